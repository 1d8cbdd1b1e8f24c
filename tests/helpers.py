"""Helpers shared by the test modules (fixtures live in the conftest files).

Test modules import from here, never from conftest or from each other.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from hospitals.models import Handoff, Hospital, HospitalStaff
from integrations.models import OutboxEvent
from paramedics.models import LocationFix, Paramedic, Shift, ShiftAssignment, Station
from tasks.models import EmergencyTask, TaskHistory
from xrays.models import XrayImage, XrayUploadSession

API = "/api/v1"

# Services whose tests must run: a missing one fails the run instead of skipping.
STRICT_SERVICES = {s for s in os.environ.get("STRICT_SERVICES", "").split(",") if s}


def client_for(user) -> APIClient:
    """A fresh API client authenticated as `user` (None: anonymous)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


# Every new test client loads the middleware on its first request; one shared
# client keeps the several hundred requests of the security tables fast.
_SHARED_CLIENT = APIClient()


class Caller:
    """`client_for(user)` on one shared test client; credentials are set per request."""

    def __init__(self, user=None, *, token: str | None = None, scheme: str = "Bearer"):
        if user is not None:
            token = str(AccessToken.for_user(user))
        self.headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"} if token else {}

    def request(self, method: str, *args, raise_request_exception=True, **kwargs):
        _SHARED_CLIENT.credentials(**self.headers)
        _SHARED_CLIENT.raise_request_exception = raise_request_exception
        return getattr(_SHARED_CLIENT, method.lower())(*args, **kwargs)

    def get(self, *args, **kwargs):
        return self.request("get", *args, **kwargs)

    def post(self, *args, **kwargs):
        return self.request("post", *args, **kwargs)

    def patch(self, *args, **kwargs):
        return self.request("patch", *args, **kwargs)

    def put(self, *args, **kwargs):
        return self.request("put", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self.request("delete", *args, **kwargs)


def assert_json_error(response, status: int, code: str) -> dict:
    """The API's error format: JSON `{code, detail, errors?}` with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def upload(client, paramedic, task, content: bytes, /, name="scan.bin", key=None, **fields):
    """POST /paramedics/{id}/xray with `content` as the image (and an Idempotency-Key)."""
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        f"{API}/paramedics/{paramedic.id}/xray",
        {"image": SimpleUploadedFile(name, content), "task": str(task.id), **fields},
        format="multipart",
        **headers,
    )


def upload_in_session(client, paramedic, task, content: bytes, /, **fields):
    """The resumable way: open a session, PUT its parts, complete it.

    Returns (session id, the complete's response). Every part URL must take its part.
    """
    import hashlib

    session = client.post(
        f"{API}/paramedics/{paramedic.id}/xray-uploads",
        {
            "task": str(task.id),
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            **fields,
        },
        format="json",
    )
    assert session.status_code == 201, session.content
    body = session.json()
    for part in body["parts"]:
        start = (part["number"] - 1) * body["part_size"]
        status, _ = put_part(part["url"], content[start : start + part["size"]])
        assert status == 200, (part["number"], status)
    return body["id"], client.post(f"{API}/xray-uploads/{body['id']}/complete")


def put_part(url: str, data: bytes) -> tuple[int, str]:
    """PUT one part to a session's part URL as a device would: (status, ETag header).

    The service's own URLs (filesystem mode) go through the test client; S3's
    presigned URLs over HTTP to the real server, without any Authorization header.
    """
    if url.startswith("http://testserver"):
        response = APIClient().generic(
            "PUT",
            url.removeprefix("http://testserver"),
            data,
            content_type="application/octet-stream",
        )
        return response.status_code, response.get("ETag", "")
    import httpx

    response = httpx.put(url, content=data, timeout=30)
    return response.status_code, response.headers.get("ETag", "")


def stored_keys() -> list[str]:
    """Every object under xrays/ in the current storage."""
    keys = []

    def walk(prefix):
        dirs, files = default_storage.listdir(prefix)
        keys.extend(f"{prefix}/{f}" for f in files)
        for d in dirs:
            walk(f"{prefix}/{d}")

    try:
        walk("xrays")
    except FileNotFoundError:
        return []
    return keys


def in_parallel(count: int, action):
    """Run `action(i)` in `count` threads released at the same instant; their results."""
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=10)
            return action(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


User = get_user_model()
WATCHED_MODELS = (
    User,
    User.groups.through,
    Hospital,
    HospitalStaff,
    Handoff,
    Paramedic,
    Station,
    Shift,
    ShiftAssignment,
    LocationFix,
    EmergencyTask,
    TaskHistory,
    XrayImage,
    XrayUploadSession,
    OutboxEvent,
    OutstandingToken,
    BlacklistedToken,
)


def db_state() -> dict:
    """Every row of every model a request could touch, plus the stored files."""
    state = {m._meta.label: list(m.objects.order_by("pk").values()) for m in WATCHED_MODELS}
    state["files"] = sorted(stored_keys())
    return state


def new_paramedic_body() -> dict:
    """A valid POST /paramedics body (badge NEW-1)."""
    return {
        "badge_number": "NEW-1",
        "first_name": "New",
        "last_name": "Medic",
        "email": "new1@ems.example.org",
        "certification_level": "emt",
    }


def full_profile(paramedic: Paramedic, **changes) -> dict:
    """A PUT /paramedics/{id} body: the profile as it is, with `changes`."""
    return {
        "badge_number": paramedic.badge_number,
        "first_name": paramedic.first_name,
        "last_name": paramedic.last_name,
        "email": paramedic.email,
        "certification_level": paramedic.certification_level,
        "phone": paramedic.phone,
        "base_station": paramedic.base_station_code,
        **changes,
    }


def new_task_body(request_id: str = "authz-req-1") -> dict:
    """A valid POST /tasks body."""
    return {
        "request_id": request_id,
        "patient_id": "patient-77",
        "priority": "critical",
        "description": "Chest pain",
        "location": {"lat": 52.5, "lon": 13.4},
    }
