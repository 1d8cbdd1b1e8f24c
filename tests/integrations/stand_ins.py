"""Real HTTP servers on 127.0.0.1 standing in for the three outside services.

One threaded server answers all three under different prefixes, records every
request (method, path, headers, JSON body), and can be told to fail the first
N calls to a path, to answer with a chosen status, or to stall.
"""

import json
import threading
import time
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PATIENT = "/patient-service"
NOTIFICATION = "/notification-service"
XRAY = "/xray-service"

PATIENT_DETAILS = {
    "name": "Jane Roe",
    "date_of_birth": "1961-04-12",
    "allergies": ["penicillin"],
    "conditions": ["atrial fibrillation"],
    "emergency_contact": "+4930555123",
}


@dataclass
class Recorded:
    method: str
    path: str  # decoded, as the server routes it
    raw_path: str  # as sent on the wire (percent-encoding intact, query included)
    headers: dict
    body: dict | None


@dataclass
class StandIns:
    server: HTTPServer
    requests: list[Recorded] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path prefix -> calls to fail
    fail_status: int = 503
    stall_first: dict[str, float] = field(default_factory=dict)  # path prefix -> seconds
    status_for: dict[str, int] = field(default_factory=dict)  # path prefix -> fixed status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, prefix: str) -> str:
        return self.server.url_for(prefix).rstrip("/")

    def handle(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        path = request.path
        with self.lock:
            raw_path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI", "")
            self.requests.append(
                Recorded(request.method, path, raw_path, dict(request.headers), body)
            )
            prefix = next((p for p in (PATIENT, NOTIFICATION, XRAY) if path.startswith(p)), "")
            stall = self.stall_first.pop(prefix, 0)
            failing = self.fail_first.get(prefix, 0)
            if failing:
                self.fail_first[prefix] = failing - 1
        if stall:
            time.sleep(stall)
        if failing:
            return Response("unavailable", status=self.fail_status)
        if prefix in self.status_for:
            return Response("{}", status=self.status_for[prefix], mimetype="application/json")
        if prefix == PATIENT and request.method == "GET":
            return _json(PATIENT_DETAILS)
        if prefix == XRAY:
            return _json({"id": f"xr-{body['xray_id'][:8]}"}, status=201)
        return _json({"accepted": True}, status=202)

    def to(self, prefix: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def wait_for(self, prefix: str, count: int, timeout: float = 30) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.to(prefix)
            if len(seen) >= count:
                return seen
            time.sleep(0.1)
        raise AssertionError(f"{prefix}: saw {len(self.to(prefix))} requests, wanted {count}")


def _json(data, status=200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def start_stand_ins() -> StandIns:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    stand_ins = StandIns(server=server)
    import re

    server.expect_request(re.compile(".*")).respond_with_handler(stand_ins.handle)
    return stand_ins
