"""A small Server-Sent Events client and an in-process ASGI server for the tests."""

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn


@dataclass
class Event:
    id: str | None
    kind: str
    data: str

    def json(self):
        import json

        return json.loads(self.data)


class Stream:
    """Reads a text/event-stream response event by event (comments skipped)."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.lines = response.iter_lines()
        self.last_id: str | None = None
        self.comments = 0

    def next(self, timeout: float = 15.0) -> Event:
        """The next dispatched event (heartbeats do not count towards it)."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        for line in self.lines:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {timeout} s")
            if line == "":
                if "id" in fields:
                    self.last_id = fields["id"]
                if "data" in fields:
                    return Event(fields.get("id"), fields.get("event", "message"), fields["data"])
                fields = {}
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    def beats(self, count: int, timeout: float = 15.0) -> None:
        """Read on until `count` heartbeats (comment lines) have been seen in all."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if line.startswith(":"):
                self.comments += 1
            if self.comments >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not {count} heartbeats within {timeout} s")
        raise EOFError("the stream ended")

    def until(self, kind: str, limit: int = 20) -> Event:
        for _ in range(limit):
            event = self.next()
            if event.kind == kind:
                return event
        raise AssertionError(f"no {kind} event in {limit}")


class AsgiServer:
    """uvicorn serving Django's ASGI application in a thread of the test process."""

    def __init__(self):
        from core.asgi import get_asgi_application

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(
            get_asgi_application(),
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        from integrations.live import hub

        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
        hub.stop()


def open_stream(client: httpx.Client, url: str, token: str | None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.stream("GET", url, headers={"Accept": "text/event-stream", **headers})
