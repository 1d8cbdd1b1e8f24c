"""Authorization across the whole API (OWASP API1, API5): one table, every route x role.

`TABLE` lists every endpoint and method under /api/v1 (and DELETE/PUT/PATCH
attempts the router does not expose). Each row says what status each role
(tests/security/conftest.py) gets. Every row x role pair is one test that
builds fresh state, sends the request and checks the status, the error body
(`code`, `detail`), and for every refused request or successful read that
nothing changed in the database or in file storage. A route without a row
fails `test_the_table_covers_every_route_and_role`.

This is the only place permission cells are tested; the per-app test files
test behaviour.
"""

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.utils import timezone

from hospitals.models import Handoff
from paramedics.models import LocationFix, Paramedic, ParamedicStatus, Shift, Station
from tasks.models import EmergencyTask, TaskStatus
from tests.helpers import API, Caller, db_state, full_profile, new_paramedic_body, new_task_body
from tests.xrays.samples import image_bytes
from xrays.models import UploadState, XrayImage, XrayUploadSession

ROLES = (
    "anonymous",
    "supervisor",
    "service",
    "other_service",
    "doctor",
    "own_paramedic",
    "other_paramedic",
    "hospital",
)
ERROR_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
}
NEW_PHONE = "+4930555000"
UPLOAD_JPEG = image_bytes("JPEG", color=(70, 80, 90))


# --- Success checks (what a 2xx must contain, and nothing of anyone else's) ----


def _ids(response) -> set[str]:
    return {row["id"] for row in response.json()["results"]}


def _check_roster(w, role, response):
    assert _ids(response) == {str(pk) for pk in Paramedic.objects.values_list("pk", flat=True)}


def _check_paramedic_created(w, role, response):
    data = response.json()
    created = Paramedic.objects.get(pk=data["id"])
    assert (created.badge_number, created.status) == ("NEW-1", ParamedicStatus.OFF_DUTY)
    assert created.user.username == "NEW-1"


def _check_is_subject(w, role, response):
    assert response.json()["id"] == str(w.paramedic.id)


def _check_phone_changed(w, role, response):
    assert response.json()["id"] == str(w.paramedic.id)
    assert response.json()["phone"] == NEW_PHONE
    w.paramedic.refresh_from_db()
    assert w.paramedic.phone == NEW_PHONE
    w.other_paramedic.refresh_from_db()
    assert w.other_paramedic.phone != NEW_PHONE


def _check_own_tasks_only(w, role, response):
    assert [row["id"] for row in response.json()["results"]] == [str(w.task.id)]


def _check_started(w, role, response):
    assert response.json()["status"] == TaskStatus.IN_PROGRESS
    w.task.refresh_from_db()
    assert w.task.status == TaskStatus.IN_PROGRESS
    w.other_task.refresh_from_db()
    assert w.other_task.status == TaskStatus.ASSIGNED


def _check_acknowledged(w, role, response):
    assert response.json()["milestones"]["acknowledged_at"]
    w.task.refresh_from_db()
    assert w.task.acknowledged_at is not None
    w.other_task.refresh_from_db()
    assert w.other_task.acknowledged_at is None


def _check_uploaded(w, role, response):
    data = response.json()
    assert (data["paramedic"], data["task"]) == (str(w.paramedic.id), str(w.task.id))
    assert data["sha256"] == hashlib.sha256(UPLOAD_JPEG).hexdigest()
    assert XrayImage.objects.get(pk=data["id"]).uploaded_by == w.users[role]


def _check_own_xrays_only(w, role, response):
    assert [row["id"] for row in response.json()["results"]] == [str(w.xray.id)]


def _check_task_list(w, role, response):
    expected = {
        "supervisor": {w.task, w.other_task, w.pending},
        "service": {w.task, w.pending},
        "other_service": {w.other_task},
    }[role]
    assert _ids(response) == {str(t.id) for t in expected}


def _check_task_created(w, role, response):
    data = response.json()
    assert (data["status"], data["paramedic"]) == (TaskStatus.PENDING, None)
    assert EmergencyTask.objects.get(pk=data["id"]).created_by == w.users[role]


def _check_task_detail(w, role, response):
    data = response.json()
    assert data["id"] == str(w.task.id)
    assert [h["to_status"] for h in data["history"]] == ["pending", "assigned"]


def _check_candidates(w, role, response):
    assert [c["paramedic"] for c in response.json()] == [str(w.spare.id)]


def _check_assigned(w, role, response):
    data = response.json()
    assert (data["status"], data["paramedic"]) == (TaskStatus.ASSIGNED, str(w.spare.id))


def _check_cancelled(w, role, response):
    assert response.json()["status"] == TaskStatus.CANCELLED
    w.paramedic.refresh_from_db()
    assert (w.paramedic.status, w.paramedic.current_task_id) == (ParamedicStatus.AVAILABLE, None)


def _check_xray_detail(w, role, response):
    data = response.json()
    assert data["id"] == str(w.xray.id)
    assert data["download_url"] and data["download_url_expires_at"]


def _check_session_opened(w, role, response):
    data = response.json()
    session = XrayUploadSession.objects.get(pk=data["id"])
    assert (session.paramedic, session.task, session.state) == (
        w.paramedic,
        w.task,
        UploadState.UPLOADING,
    )
    assert session.created_by == w.users[role]
    assert [p["number"] for p in data["parts"]] == [1]


def _check_session(w, role, response):
    data = response.json()
    assert (data["id"], data["state"]) == (str(w.upload_session.id), "uploading")
    assert [p["number"] for p in data["received_parts"]] == [1]


def _check_session_aborted(w, role, response):
    assert response.json()["state"] == "aborted"
    w.upload_session.refresh_from_db()
    assert w.upload_session.state == UploadState.ABORTED


def _check_session_completed(w, role, response):
    data = response.json()
    assert data["sha256"] == hashlib.sha256(w.upload_content).hexdigest()
    assert XrayImage.objects.get(pk=data["id"]).uploaded_by == w.paramedic.user
    w.upload_session.refresh_from_db()
    assert w.upload_session.state == UploadState.COMPLETED


def _check_part_stored(w, role, response):
    assert response["ETag"] == response.json()["etag"]
    assert response.json()["size"] == len(w.upload_content)


def _check_download(w, role, response):
    body = b"".join(response.streaming_content)
    response.close()
    assert body == w.xray_content
    assert response["Content-Disposition"].startswith("attachment")


def _check_stations(w, role, response):
    assert _ids(response) == {str(pk) for pk in Station.objects.values_list("pk", flat=True)}


def _check_station_created(w, role, response):
    assert Station.objects.get(pk=response.json()["id"]).code == "NEW-ST"


def _check_is_station(w, role, response):
    assert response.json()["id"] == str(w.station.id)


def _check_station_renamed(w, role, response):
    w.station.refresh_from_db()
    assert w.station.name == response.json()["name"] == "Renamed"


def _check_shifts(w, role, response):
    assert _ids(response) == {str(w.shift.id)}


def _check_shift_created(w, role, response):
    shift = Shift.objects.get(pk=response.json()["id"])
    assert list(shift.paramedics.all()) == [w.spare]


def _check_is_shift(w, role, response):
    assert response.json()["id"] == str(w.shift.id)


def _check_shift_noted(w, role, response):
    w.shift.refresh_from_db()
    assert w.shift.notes == response.json()["notes"] == "swap with B"


def _check_shift_deleted(w, role, response):
    assert not Shift.objects.filter(pk=w.shift.pk).exists()


def _check_own_shifts(w, role, response):
    assert _ids(response) == {str(w.shift.id)}


def _check_own_trail(w, role, response):
    assert [row["lat"] for row in response.json()["results"]] == [1.0]


def _check_hospitals(w, role, response):
    assert _ids(response) == {str(w.hospital.id), str(w.other_hospital.id)}


def _check_is_hospital(w, role, response):
    assert response.json()["id"] == str(w.hospital.id)


def _check_hospital_created(w, role, response):
    assert response.json()["code"] == "NEW-H"
    assert response.json()["status"] == "open"


def _check_diverted(w, role, response):
    assert response.json()["status"] == "diversion"
    w.hospital.refresh_from_db()
    w.other_hospital.refresh_from_db()
    assert (w.hospital.status, w.other_hospital.status) == ("diversion", "open")


def _check_hospital_renamed(w, role, response):
    w.hospital.refresh_from_db()
    assert w.hospital.name == "Renamed"


def _check_staff_created(w, role, response):
    assert response.json() == {"username": "ed-new", "hospital": str(w.hospital.id)}


def _check_destinations(w, role, response):
    # Both at the factory's place, open, nothing needed: by code.
    assert [row["hospital"]["id"] for row in response.json()] == [
        str(w.other_hospital.id),
        str(w.hospital.id),
    ]


def _handoff_report(w):
    return {**w.REPORT, "hospital": str(w.hospital.id)}


def _check_handoff_sent(w, role, response):
    assert response.json()["state"] == "sent"
    assert Handoff.objects.get().task_id == w.task.id


def _check_incoming(w, role, response):
    assert _ids(response) == {str(w.handoff.id)}


def _check_is_handoff(w, role, response):
    assert response.json()["id"] == str(w.handoff.id)


def _check_fhir(w, role, response):
    bundle = response.json()
    assert (bundle["resourceType"], bundle["identifier"]["value"]) == (
        "Bundle",
        f"urn:uuid:{w.handoff.id}",
    )


def _check_handoff_state(state):
    def check(w, role, response):
        assert response.json()["state"] == state
        assert Handoff.objects.get(pk=response.json()["id"]).state == state
        if w.__dict__.get("other_handoff"):
            w.other_handoff.refresh_from_db()
            assert w.other_handoff.state == "sent"

    return check


def _new_hospital(w):
    return {"code": "NEW-H", "name": "New", "location": {"lat": 52.5, "lon": 13.4}}


def _put_hospital(w):
    return {**_new_hospital(w), "code": w.hospital.code, "name": "Renamed"}


def _fixes(w):
    return {"fixes": [{"lat": 3.0, "lon": 4.0, "at": timezone.now().isoformat()}]}


def _check_fixes_recorded(w, role, response):
    assert response.json()["received"] == 1
    assert list(LocationFix.objects.values_list("paramedic_id", "lat")) == [(w.paramedic.id, 3.0)]
    w.paramedic.refresh_from_db()
    assert w.paramedic.last_lat == 3.0


def _check_me(w, role, response):
    user = w.users[role]
    expected_paramedic = {"own_paramedic": w.paramedic, "other_paramedic": w.other_paramedic}
    paramedic = expected_paramedic.get(role)
    assert response.json() == {
        "username": user.username,
        "roles": {
            "supervisor": ["supervisor"],
            "service": ["service"],
            "other_service": ["service"],
            "doctor": ["doctor"],
            "hospital": ["hospital"],
        }.get(role, ["paramedic"]),
        "paramedic": str(paramedic.id) if paramedic else None,
    }


# --- Request bodies --------------------------------------------------------------


def _new_paramedic(w):
    return new_paramedic_body()


def _put_paramedic(w):
    return full_profile(w.paramedic, phone=NEW_PHONE)


def _new_shift(w):
    start = timezone.now() + timedelta(days=1)
    return {
        "station": str(w.station.id),
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=8)).isoformat(),
        "paramedics": [str(w.spare.id)],
    }


def _put_shift(w):
    return {
        "station": str(w.station.id),
        "starts_at": w.shift.starts_at.isoformat(),
        "ends_at": w.shift.ends_at.isoformat(),
        "paramedics": [str(w.paramedic.id)],
        "notes": "swap with B",
    }


def _new_task(w):
    return new_task_body()


def _upload_declaration(w):
    content = w.upload_content
    return {
        "task": str(w.task.id),
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def _xray_form(w):
    return {"image": SimpleUploadedFile("scan.jpg", UPLOAD_JPEG), "task": str(w.task.id)}


def _check_event_stream(w, role, response):
    # The test client is not an ASGI server: the stream is its replay, then closed.
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response).decode()
    assert body.startswith("retry: ")
    assert body.rstrip().endswith('data: {"reason": "not_streaming"}')


# --- The table -------------------------------------------------------------------


def roles(*, anon, sup, svc, other_svc, doc, own, other, hosp) -> dict[str, int]:
    """Expected status per role; keyword-only, so no row can leave a role out."""
    return dict(
        zip(ROLES, (anon, sup, svc, other_svc, doc, own, other, hosp), strict=True),
    )


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def SUPERVISOR_ONLY(status: int) -> dict[str, int]:
    """Supervisors get `status`; every other signed-in role 403, anonymous 401."""
    return roles(
        anon=401, sup=status, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403
    )


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # under /api/v1; {id} is the collection's world object, {task_id} is A's task
    expect: dict[str, int]
    body: Callable | None = None
    check: Callable | None = None  # for 2xx answers
    subject: str | None = None  # World attribute {id} names, when not the default
    multipart: bool = False
    raw: bool = False  # the body is bytes (a part PUT to a part URL)
    needs: tuple[str, ...] = ()  # World attributes to create before the request


DEFAULT_SUBJECT = {
    "paramedics": "paramedic",
    "tasks": "task",
    "xrays": "xray",
    "stations": "station",
    "shifts": "shift",
    "xray-uploads": "upload_session",
    "hospitals": "hospital",
    "handoffs": "handoff",
}

# Who may do what (design §4, §5). Refusals: 401 anonymous, 403 a role outside its
# rights, 404 when even existence must not leak (another's task, X-ray, profile).
# A method the route does not have is 405 -- after the permission check, so a role
# with no business on the route at all still gets 403.
TABLE = [
    # -- who am I ---------------------------------------------------------------
    Row("GET", "/me", roles(anon=401, sup=200, svc=200, other_svc=200, doc=200, own=200,
        other=200, hosp=200), check=_check_me),
    Row("POST", "/me", roles(anon=401, sup=405, svc=405, other_svc=405, doc=405, own=405,
        other=405, hosp=405)),
    # -- paramedics -------------------------------------------------------------
    Row("GET", "/paramedics",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403),
        check=_check_roster),
    Row("POST", "/paramedics",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403),
        body=_new_paramedic, check=_check_paramedic_created),
    Row("DELETE", "/paramedics",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("GET", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_is_subject),
    Row("PUT", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        body=_put_paramedic, check=_check_phone_changed),
    Row("PATCH", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        body=lambda w: {"phone": NEW_PHONE}, check=_check_phone_changed),
    Row("DELETE", "/paramedics/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    # -- a paramedic's tasks ----------------------------------------------------
    Row("GET", "/paramedics/{id}/tasks",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_own_tasks_only),
    Row("DELETE", "/paramedics/{id}/tasks",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("POST", "/paramedics/{id}/tasks/{task_id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        body=lambda w: {"status": "in_progress"}, check=_check_started),
    Row("DELETE", "/paramedics/{id}/tasks/{task_id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("POST", "/paramedics/{id}/tasks/{task_id}/milestones",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        body=lambda w: {"milestone": "acknowledged"}, check=_check_acknowledged),
    Row("DELETE", "/paramedics/{id}/tasks/{task_id}/milestones",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    # -- live updates (design §12) -----------------------------------------------
    Row("GET", "/paramedics/{id}/events",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_event_stream),
    Row("POST", "/paramedics/{id}/events",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("GET", "/events",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403),
        check=_check_event_stream),
    Row("POST", "/events",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403)),
    # -- a paramedic's X-rays ---------------------------------------------------
    Row("POST", "/paramedics/{id}/xray",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=201, other=404, hosp=403),
        body=_xray_form, multipart=True, check=_check_uploaded),
    Row("DELETE", "/paramedics/{id}/xray",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("POST", "/paramedics/{id}/xray-uploads",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=201, other=404, hosp=403),
        body=_upload_declaration, check=_check_session_opened),
    Row("DELETE", "/paramedics/{id}/xray-uploads",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    Row("GET", "/paramedics/{id}/xrays",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=200, own=200, other=404, hosp=403),
        check=_check_own_xrays_only, needs=("xray", "other_xray")),
    Row("DELETE", "/paramedics/{id}/xrays",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405, hosp=403)),
    # -- a paramedic's shifts (design §14) ----------------------------------------
    Row("GET", "/paramedics/{id}/shifts",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_own_shifts, needs=("shift",)),
    Row("DELETE", "/paramedics/{id}/shifts",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    # -- location trails (design §20): a device sends its own, supervisors read -----
    Row("GET", "/paramedics/{id}/locations", SUPERVISOR_ONLY(200),
        check=_check_own_trail, needs=("trails",)),
    Row("POST", "/paramedics/{id}/locations",
        roles(anon=401, sup=403, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        body=_fixes, check=_check_fixes_recorded),
    Row("DELETE", "/paramedics/{id}/locations",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403)),
    # -- stations and shifts: supervisors only ----------------------------------
    Row("GET", "/stations", SUPERVISOR_ONLY(200), check=_check_stations),
    Row("POST", "/stations", SUPERVISOR_ONLY(201),
        body=lambda w: {"code": "NEW-ST", "name": "New"}, check=_check_station_created),
    Row("DELETE", "/stations", SUPERVISOR_ONLY(405)),
    Row("GET", "/stations/{id}", SUPERVISOR_ONLY(200), check=_check_is_station),
    Row("PUT", "/stations/{id}", SUPERVISOR_ONLY(200),
        body=lambda w: {"code": "North", "name": "Renamed"}, check=_check_station_renamed),
    Row("PATCH", "/stations/{id}", SUPERVISOR_ONLY(200),
        body=lambda w: {"name": "Renamed"}, check=_check_station_renamed),
    Row("DELETE", "/stations/{id}", SUPERVISOR_ONLY(405)),
    Row("GET", "/shifts", SUPERVISOR_ONLY(200), check=_check_shifts, needs=("shift",)),
    Row("POST", "/shifts", SUPERVISOR_ONLY(201), body=_new_shift, check=_check_shift_created),
    Row("GET", "/shifts/{id}", SUPERVISOR_ONLY(200), check=_check_is_shift),
    Row("PUT", "/shifts/{id}", SUPERVISOR_ONLY(200), body=_put_shift, check=_check_shift_noted),
    Row("PATCH", "/shifts/{id}", SUPERVISOR_ONLY(200),
        body=lambda w: {"notes": "swap with B"}, check=_check_shift_noted),
    Row("DELETE", "/shifts/{id}", SUPERVISOR_ONLY(204), check=_check_shift_deleted),
    # -- hospitals (design §21): anyone reads; a hospital keeps its own status -----
    Row("GET", "/hospitals",
        roles(anon=401, sup=200, svc=200, other_svc=200, doc=200, own=200, other=200,
        hosp=200), check=_check_hospitals),
    Row("POST", "/hospitals", SUPERVISOR_ONLY(201),
        body=_new_hospital, check=_check_hospital_created),
    Row("DELETE", "/hospitals",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=403)),
    Row("GET", "/hospitals/{id}",
        roles(anon=401, sup=200, svc=200, other_svc=200, doc=200, own=200, other=200,
        hosp=200), check=_check_is_hospital),
    Row("PUT", "/hospitals/{id}", SUPERVISOR_ONLY(200),
        body=_put_hospital, check=_check_hospital_renamed),
    Row("PATCH", "/hospitals/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=200),
        body=lambda w: {"status": "diversion", "diversion_reason": "full"},
        check=_check_diverted),
    Row("PATCH", "/hospitals/{other_hospital.id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=403), body=lambda w: {"ed_beds_available": 0}),
    Row("DELETE", "/hospitals/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=403)),
    Row("POST", "/hospitals/{id}/staff", SUPERVISOR_ONLY(201),
        body=lambda w: {"username": "ed-new", "password": "a-strong-passphrase-42"},
        check=_check_staff_created),
    Row("GET", "/hospitals/{id}/handoffs",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=200), check=_check_incoming, needs=("handoff", "other_handoff")),
    Row("GET", "/hospitals/{other_hospital.id}/handoffs",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=404)),
    Row("DELETE", "/hospitals/{id}/handoffs",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=405)),
    # -- handoffs (design §21): its crew, its hospital, supervisors ------------------
    Row("GET", "/handoffs", everyone(404)),  # no route: a hospital lists its own
    Row("GET", "/handoffs/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404,
        hosp=200), check=_check_is_handoff),
    Row("GET", "/handoffs/{other_handoff.id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=404, other=200,
        hosp=404)),
    Row("DELETE", "/handoffs/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405,
        hosp=405)),
    Row("GET", "/handoffs/{id}/fhir",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404,
        hosp=200), check=_check_fhir),
    Row("DELETE", "/handoffs/{id}/fhir",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405,
        hosp=405)),
    Row("POST", "/handoffs/{id}/acknowledge",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=200), check=_check_handoff_state("acknowledged"), needs=("other_handoff",)),
    Row("POST", "/handoffs/{other_handoff.id}/acknowledge",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403,
        hosp=404)),
    Row("POST", "/handoffs/{id}/offload",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404,
        hosp=200), subject="arrived_handoff", check=_check_handoff_state("offloaded")),
    Row("POST", "/handoffs/{id}/cancel",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404,
        hosp=403), check=_check_handoff_state("cancelled")),
    # -- tasks ------------------------------------------------------------------
    Row("GET", "/tasks",
        roles(anon=401, sup=200, svc=200, other_svc=200, doc=403, own=403, other=403, hosp=403),
        check=_check_task_list),
    Row("POST", "/tasks",
        roles(anon=401, sup=201, svc=201, other_svc=201, doc=403, own=403, other=403, hosp=403),
        body=_new_task, check=_check_task_created),
    Row("DELETE", "/tasks",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403, hosp=403)),
    Row("GET", "/tasks/{id}",
        roles(anon=401, sup=200, svc=200, other_svc=404, doc=403, own=200, other=404, hosp=403),
        check=_check_task_detail),
    Row("PUT", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403, hosp=403),
        body=lambda w: {"status": "completed"}),
    Row("PATCH", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403, hosp=403),
        body=lambda w: {"status": "completed"}),
    Row("DELETE", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403, hosp=403)),
    Row("GET", "/tasks/{id}/candidates",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403),
        check=_check_candidates),
    Row("POST", "/tasks/{id}/assign",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403, hosp=403),
        body=lambda w: {"paramedic": str(w.spare.id)}, subject="pending",
        check=_check_assigned),
    Row("POST", "/tasks/{id}/cancel",
        roles(anon=401, sup=200, svc=200, other_svc=404, doc=403, own=403, other=403, hosp=403),
        body=lambda w: {"reason": "patient called back"}, check=_check_cancelled),
    Row("GET", "/tasks/{id}/destinations",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404,
        hosp=403), check=_check_destinations, needs=("hospital",)),
    Row("DELETE", "/tasks/{id}/destinations",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405,
        hosp=403)),
    Row("POST", "/tasks/{id}/handoff",
        roles(anon=401, sup=403, svc=403, other_svc=403, doc=403, own=201, other=404,
        hosp=403), body=_handoff_report, check=_check_handoff_sent, needs=("task_started",)),
    Row("DELETE", "/tasks/{id}/handoff",
        roles(anon=401, sup=403, svc=403, other_svc=403, doc=403, own=405, other=405,
        hosp=403)),
    # -- X-rays -----------------------------------------------------------------
    Row("GET", "/xrays", everyone(404)),  # no route: there is no global X-ray list
    Row("GET", "/xrays/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=200, own=200, other=404, hosp=403),
        check=_check_xray_detail),
    Row("PATCH", "/xrays/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405, hosp=403),
        body=lambda w: {"notes": "edited", "sha256": "0" * 64}),
    Row("DELETE", "/xrays/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405, hosp=403)),
    # The download URL is a bearer capability: the signed token decides, a JWT is ignored.
    Row("GET", "/xrays/{id}/file?token={valid_token}", everyone(200), check=_check_download),
    Row("GET", "/xrays/{id}/file?token={expired_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file?token={tampered_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file?token={other_xray_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file", everyone(404)),
    Row("DELETE", "/xrays/{id}/file?token={valid_token}", everyone(405)),
    # -- resumable uploads (design §13) ------------------------------------------
    Row("GET", "/xray-uploads", everyone(404)),  # no route: sessions are found by id
    Row("GET", "/xray-uploads/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_session),
    Row("DELETE", "/xray-uploads/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404, hosp=403),
        check=_check_session_aborted),
    Row("PATCH", "/xray-uploads/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405, hosp=403),
        body=lambda w: {"state": "completed"}),
    Row("POST", "/xray-uploads/{id}/complete",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=201, other=404, hosp=403),
        check=_check_session_completed),
    # A part URL is a bearer capability like a presigned S3 URL: the token decides.
    Row("PUT", "/xray-uploads/{id}/parts/1?token={part_token}", everyone(200),
        body=lambda w: w.upload_content, raw=True, check=_check_part_stored),
    Row("PUT", "/xray-uploads/{id}/parts/1?token={expired_part_token}", everyone(403),
        body=lambda w: w.upload_content, raw=True),
    Row("PUT", "/xray-uploads/{id}/parts/1?token={other_part_token}", everyone(403),
        body=lambda w: w.upload_content, raw=True),
    Row("PUT", "/xray-uploads/{id}/parts/2?token={part_token}", everyone(403),
        body=lambda w: w.upload_content, raw=True),
    Row("PUT", "/xray-uploads/{id}/parts/1", everyone(403),
        body=lambda w: w.upload_content, raw=True),
    Row("POST", "/xray-uploads/{id}/parts/1?token={part_token}", everyone(405)),
]  # fmt: skip

CELLS = [
    pytest.param(row, role, id=f"{row.method} {row.path} [{role}]")
    for row in TABLE
    for role in ROLES
]


class _Placeholders(dict):
    def __init__(self, world, row: Row):
        super().__init__()
        self.world, self.row = world, row

    def __missing__(self, key):
        if key == "id":
            collection = self.row.path.split("/")[1]
            return getattr(self.world, self.row.subject or DEFAULT_SUBJECT[collection]).id
        if key == "task_id":
            return self.world.task.id
        return getattr(self.world, key)


def _show(response) -> str:
    if getattr(response, "streaming", False):
        return f"{response.status_code} (file)"
    return f"{response.status_code} {response.content[:500]!r}"


def _api_routes() -> set[tuple[str, str]]:
    """(url name, METHOD) of every route the URLconf exposes under /api/v1 but JWT's."""
    routes = set()

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
                continue
            view = pattern.callback
            if getattr(view, "actions", None):  # a viewset route: its method -> action map
                methods = set(view.actions)
            else:
                cls = view.view_class
                methods = {m for m in cls.http_method_names if hasattr(cls, m)}
            # HEAD follows GET (DRF adds it once a viewset has answered); OPTIONS is metadata.
            methods -= {"head", "options"}
            routes.update((pattern.name, m.upper()) for m in methods)

    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    walk(api.url_patterns)
    return {(name, method) for name, method in routes if not name.startswith("token_")}


def _route_of(row: Row) -> tuple[str, str] | None:
    path = re.sub(r"\{(id|task_id)\}", str(uuid.uuid4()), row.path.split("?")[0])
    try:
        return resolve(API + path).url_name, row.method
    except Resolver404:
        return None


def test_the_table_covers_every_route_and_role():
    assert all(set(row.expect) == set(ROLES) for row in TABLE)
    assert len({(row.method, row.path) for row in TABLE}) == len(TABLE)
    missing = _api_routes() - {_route_of(row) for row in TABLE}
    assert not missing, f"routes without a row in TABLE: {sorted(missing)}"


@pytest.mark.parametrize(("row", "role"), CELLS)
def test_authorization_table(world, row, role):
    for name in row.needs:
        getattr(world, name)
    url = API + row.path.format_map(_Placeholders(world, row))
    data = row.body(world) if row.body else None
    client = Caller(world.users[role])  # before the snapshot: it records a token
    before = db_state()

    if row.raw:
        response = client.request(
            row.method, url, data=data, content_type="application/octet-stream"
        )
    else:
        response = client.request(
            row.method, url, data=data, format="multipart" if row.multipart else "json"
        )

    expected = row.expect[role]
    assert response.status_code == expected, _show(response)
    if expected >= 400:
        body = response.json()
        assert {"code", "detail"} <= body.keys(), body
        assert body["code"] == ERROR_CODES[expected], body
        assert db_state() == before, "a refused request changed the database or storage"
    else:
        if row.method == "GET":
            assert db_state() == before, "a read changed the database or storage"
        if row.check:
            row.check(world, role, response)
