"""Fan-out across server processes on PostgreSQL (design §12): two ASGI servers.

Each is gunicorn with the production worker class (uvicorn); an event committed
by a request to one reaches a stream held by the other, through LISTEN/NOTIFY.
They share a cache (a directory here, Redis in production), where the per-user
cap on open streams is counted.
"""

import os
import subprocess
import sys
import time

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import TaskFactory
from tests.integrations.workers import ROOT, database_url
from tests.processes import free_port, terminate
from tests.server.sse import Stream, open_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_servers(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "LIVE_HEARTBEAT_SECONDS": "1",
        "LIVE_POLL_SECONDS": "0.2",  # the hub looks at least every second
        "CACHE_URL": f"filecache://{tmp_path / 'cache'}",
        "LIVE_MAX_STREAMS_PER_USER": "1",
    }
    servers = []
    for name in ("a", "b"):
        port = free_port()
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.asgi:application",
                "--worker-class",
                "config.asgi_worker.Worker",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append((process, f"http://127.0.0.1:{port}", log))
    try:
        for process, url, _ in servers:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (tmp_path / "a.log").read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield [url for _, url, _ in servers]
    finally:
        for process, _, log in servers:
            terminate(process)
            log.close()


def test_an_event_committed_in_one_process_reaches_a_stream_in_the_other(
    two_servers, paramedic, supervisor
):
    a, b = two_servers
    task = TaskFactory()
    device = str(AccessToken.for_user(paramedic.user))
    http = httpx.Client(timeout=10)
    with http, open_stream(http, f"{a}/api/v1/paramedics/{paramedic.id}/events", device) as r:
        assert r.status_code == 200
        stream = Stream(r)
        response = http.post(
            f"{b}/api/v1/tasks/{task.id}/assign",
            json={"paramedic": str(paramedic.id)},
            headers={"Authorization": f"Bearer {AccessToken.for_user(supervisor)}"},
        )
        assert response.status_code == 200, response.text
        started = time.monotonic()
        event = stream.next()
        assert event.kind == "task.assigned"
        assert event.json()["id"] == str(task.id)
        assert time.monotonic() - started < 3  # pushed, not found by a slow poll


def test_the_cap_on_a_callers_streams_holds_across_processes(two_servers, paramedic, supervisor):
    a, b = two_servers
    device = str(AccessToken.for_user(paramedic.user))
    url = f"/api/v1/paramedics/{paramedic.id}/events"
    http = httpx.Client(timeout=10)
    with http, open_stream(http, a + url, device) as first:
        old = Stream(first)
        next(old.lines)
        with open_stream(http, b + url, device) as second:  # one more than the cap of 1
            assert second.status_code == 200
            new = Stream(second)
            next(new.lines)
            started = time.monotonic()
            closed = old.until("stream.closed")
            assert closed.json() == {"reason": "too_many_streams"}
            assert time.monotonic() - started < 4  # a heartbeat (1 s) or so later
            task = TaskFactory()
            http.post(
                f"{a}/api/v1/tasks/{task.id}/assign",
                json={"paramedic": str(paramedic.id)},
                headers={"Authorization": f"Bearer {AccessToken.for_user(supervisor)}"},
            ).raise_for_status()
            assert new.until("task.assigned").json()["id"] == str(task.id)
