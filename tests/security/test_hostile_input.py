"""Hostile and careless input on every mutating endpoint, as every role (design §16).

Each endpoint's valid body is bent in every way the class of problem allows:
deep nesting, a non-object document, broken encodings, NUL characters, huge or
wrongly typed strings, partial nested objects, non-finite numbers and times UTC
cannot hold. Whoever sends it, the answer is a 4xx JSON error with a `code`,
never a 5xx, and nothing changes in the database or in storage.
"""

import copy
import json
import logging
import logging.config
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.logging import RequestContextFilter
from tests.helpers import API, Caller, db_state, full_profile, new_paramedic_body, new_task_body

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
NOT_UTC = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-13-45T99:99:99Z"]
# A device's time of an action (design §17) far in the future or a year old.
OUT_OF_BOUNDS = ["2999-01-01T00:00:00Z", "2001-01-01T00:00:00Z"]


def before_the_assignment() -> str:
    """Within the 24 hours a device may report back, but long before the task (assigned
    when the world was made) was assigned to its paramedic."""
    return (timezone.now() - timedelta(hours=23, minutes=50)).isoformat()


def a_fix(**changes) -> dict:
    """A valid location fix (design §20), taken a few seconds ago, with `changes`."""
    at = (timezone.now() - timedelta(seconds=5)).isoformat()
    return {"lat": 52.5, "lon": 13.4, "at": at, "accuracy_m": 5.0, **changes}


# A batch's `fixes` bent every way: too many, non-finite, out of range, out of the
# device-time bounds, times UTC cannot hold, wrong types, nested junk.
HOSTILE_FIXES = [
    [a_fix()] * 10_000,
    [a_fix(lat=float("nan"))],
    [a_fix(lon=float("inf"))],
    [a_fix(lat=1e308 * 10)],
    [a_fix(lat=91)],
    [a_fix(lat=-90.0001)],
    [a_fix(lon=180.5)],
    [a_fix(lon=-181)],
    [a_fix(lat=True)],
    [a_fix(lat="52.5")],
    [a_fix(lat=None)],
    [a_fix(accuracy_m=-1)],
    [a_fix(speed_mps=1e9)],
    [a_fix(heading_deg=361)],
    [a_fix(heading_deg="north")],
    *[[a_fix(), a_fix(at=value)] for value in OUT_OF_BOUNDS],
    *[[a_fix(at=value)] for value in NOT_UTC],
    [a_fix(at=None)],
    [a_fix(at=12345)],
    [a_fix(at="yesterday")],
    [{"lat": 52.5, "lon": 13.4}],
    [{}],
    [None],
    [[a_fix()]],
    [[[[]]]],
    [a_fix(lat={"$gt": 1})],
    [a_fix(at={"$date": 1})],
    [1, 2],
    {"0": a_fix()},
    [a_fix(extra={"a": [{"b": [1] * 1000}]}), "junk"],
]

RAW_BODIES = {
    "deep list": "[" * 1000 + "]" * 1000,
    "deep object": '{"a":' * 1000 + "1" + "}" * 1000,
    "array": "[1, 2]",
    "string": '"hello"',
    "null": "null",
    "number": "1e999",
    "truncated": '{"a": ',
    "NaN": '{"a": NaN}',
}
RAW_BYTES = {
    "invalid utf-8": b'{"a": "\xff\xfe\xfd"}',
    "utf-16": json.dumps({"a": "b"}).encode("utf-16"),
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {id}: A's profile, {task}: A's task, {pending}: the pending task
    body: Callable
    strings: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()  # nested {lat, lon} objects
    times: tuple[str, ...] = ()  # "object.field" paths of times
    device_times: tuple[str, ...] = ()  # times of an action, bounded (design §17)
    extra: dict = field(default_factory=dict)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/paramedics",
        lambda w: {**new_paramedic_body(), "last_location": {"lat": 1, "lon": 2}},
        strings=("badge_number", "first_name", "email", "phone", "base_station", "password"),
        objects=("last_location",),
        times=("last_location.recorded_at",),
    ),
    Endpoint(
        "PUT",
        "/paramedics/{id}",
        lambda w: full_profile(w.paramedic),
        strings=("badge_number", "last_name", "email", "phone", "base_station"),
    ),
    Endpoint(
        "PATCH",
        "/paramedics/{id}",
        lambda w: {"phone": "+4930555000", "last_location": {"lat": 1, "lon": 2}},
        strings=("phone", "status"),
        objects=("last_location",),
        times=("last_location.recorded_at",),
    ),
    Endpoint(
        "POST",
        "/paramedics/{id}/tasks/{task}",
        lambda w: {"status": "in_progress", "note": "on my way"},
        strings=("status", "note"),
        times=("at",),
        device_times=("at",),
    ),
    Endpoint(
        "POST",
        "/paramedics/{id}/tasks/{task}/milestones",
        lambda w: {"milestone": "acknowledged", "note": "seen"},
        strings=("milestone", "note"),
        times=("at",),
        device_times=("at",),
    ),
    Endpoint(
        "POST",
        "/paramedics/{id}/locations",
        lambda w: {"fixes": [a_fix()]},
        strings=("fixes",),
        extra={"fixes": HOSTILE_FIXES},
    ),
    Endpoint(
        "POST",
        "/tasks",
        lambda w: new_task_body(),
        strings=("request_id", "patient_id", "priority", "description"),
        objects=("location",),
    ),
    Endpoint(
        "POST",
        "/tasks/{pending}/assign",
        lambda w: {"paramedic": str(w.spare.id), "note": ""},
        strings=("paramedic", "note"),
    ),
    Endpoint(
        "POST",
        "/tasks/{task}/cancel",
        lambda w: {"reason": "called back"},
        strings=("reason",),
    ),
    Endpoint(
        "POST",
        "/stations",
        lambda w: {"code": "HOSTILE", "name": "H", "location": {"lat": 1, "lon": 2}},
        strings=("code", "name", "address"),
        objects=("location",),
        extra={"min_staff": ["1", True, 1.5, -1, 10**20]},
    ),
    Endpoint(
        "PATCH",
        "/stations/{station}",
        lambda w: {"name": "H", "min_staff": 2},
        strings=("code", "name"),
        objects=("location",),
    ),
    Endpoint(
        "POST",
        "/shifts",
        lambda w: {
            "station": str(w.station.id),
            "starts_at": "2026-12-24T06:00:00Z",
            "ends_at": "2026-12-24T14:00:00Z",
            "paramedics": [str(w.spare.id)],
            "notes": "",
        },
        strings=("station", "notes"),
        times=("starts_at", "ends_at"),
        extra={"paramedics": ["x", [None], [5], ["not-a-uuid"], [{"$gt": ""}]]},
    ),
    Endpoint(
        "PATCH",
        "/shifts/{shift}",
        lambda w: {"notes": "n", "ends_at": w.shift.ends_at.isoformat()},
        strings=("notes", "station"),
        times=("starts_at", "ends_at"),
    ),
    Endpoint(
        "POST",
        "/paramedics/{id}/xray-uploads",
        lambda w: {
            "task": str(w.task.id),
            "size": 1000,
            "sha256": "ab" * 32,
            "body_part": "chest",
            "notes": "",
        },
        strings=("task", "sha256", "consultation_id", "body_part", "notes"),
        times=("captured_at",),
        extra={"size": [-1, 10**30, 1.5, "1000", True, 1e308 * 10]},
    ),
    Endpoint(
        "POST",
        "/xray-uploads/{session}/complete",
        lambda w: {"parts": [{"number": 1, "etag": '"abc"'}]},
        strings=("parts",),
    ),
    Endpoint(
        "POST",
        "/auth/token/",
        lambda w: {"username": "B-1", "password": "wrong-password"},
        strings=("username", "password"),
    ),
    Endpoint(
        "POST",
        "/hospitals",
        lambda w: {"code": "HOSTILE", "name": "H", "location": {"lat": 1, "lon": 2}},
        strings=("code", "name", "address", "diversion_reason", "status"),
        objects=("location",),
        extra={
            "capabilities": ["stroke", ["cardiology"], [None], ["stroke"] * 1000, {"a": 1}],
            "ed_beds_available": ["1", True, 1.5, -1, 10**20],
        },
    ),
    Endpoint(
        "PATCH",
        "/hospitals/{hospital}",
        lambda w: {"status": "diversion", "diversion_reason": "full"},
        strings=("status", "diversion_reason"),
        extra={"ed_beds_available": ["1", True, 1.5, -1, 10**20]},
    ),
    Endpoint(
        "POST",
        "/tasks/{task_started}/handoff",
        lambda w: {**w.REPORT, "hospital": str(w.hospital.id), "vitals": {"pulse": 80}},
        strings=("hospital", "acuity", "sex", "chief_complaint"),
        times=("eta",),
        extra={
            "vitals": [
                {"bp_systolic": 400, "bp_diastolic": 80},
                {"bp_systolic": 120, "bp_diastolic": 130},
                {"bp_systolic": 120},
                {"pulse": -1},
                {"pulse": 1e308 * 10},
                {"spo2": 101},
                {"spo2": float("nan")},
                {"temperature_c": float("nan")},
                {"temperature_c": 60.0},
                {"gcs": 2},
                {"gcs": 16},
                {"resp_rate": "12"},
                {"pulse": True},
                {"pulse": 80.5},
                "120/80",
                [80],
            ],
            "age_years": [-1, 121, 10**20, "40", 40.5, True, None],
            "stable": ["yes", None, 1],
            "treatments": ["oxygen", ["x" * 101], ["a"] * 31, [None], [{"a": 1}]],
            "eta": ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"],
            "hospital": ["00000000-0000-0000-0000-000000000000"],
            "confirm_diversion": ["yes", None],
        },
    ),
    Endpoint("POST", "/auth/token/refresh/", lambda w: {"refresh": "x.y.z"}, strings=("refresh",)),
    Endpoint(
        "POST", "/auth/token/blacklist/", lambda w: {"refresh": "x.y.z"}, strings=("refresh",)
    ),
]


def _set(body: dict, dotted: str, value) -> dict:
    body = json.loads(json.dumps(body))
    *parents, name = dotted.split(".")
    target = body
    for parent in parents:
        target = target.setdefault(parent, {})
    target[name] = value
    return body


def mutations(endpoint: Endpoint, valid: dict):
    """(label, raw bytes of a JSON body) for every hostile variant of `valid`."""
    for label, text in RAW_BODIES.items():
        yield label, text.encode()
    yield from RAW_BYTES.items()
    for name in endpoint.strings:
        for label, value in (
            ("NUL", "a\x00b"),
            ("lone surrogate", "a\ud800b"),  # valid JSON escape, no valid UTF-8
            ("100k chars", "x" * 100_000),
            ("number", 12345),
            ("object", {"$gt": ""}),
            ("list", ["a"]),
            ("null", None),
        ):
            yield f"{name}={label}", json.dumps(_set(valid, name, value)).encode()
    for name in endpoint.objects:
        for label, value in (
            ("empty", {}),
            ("lat only", {"lat": 1}),
            ("lon only", {"lon": 1}),
            ("string", "52.5,13.4"),
            ("infinite", {"lat": 1e308 * 10, "lon": 1}),
            ("NaN", {"lat": float("nan"), "lon": 1}),
            ("out of range", {"lat": 91, "lon": 181}),
        ):
            yield f"{name}={label}", json.dumps(_set(valid, name, value)).encode()
    for dotted in endpoint.times:
        for value in NOT_UTC:
            yield f"{dotted}={value}", json.dumps(_set(valid, dotted, value)).encode()
    for dotted in endpoint.device_times:
        for value in [*OUT_OF_BOUNDS, before_the_assignment()]:
            yield f"{dotted}={value}", json.dumps(_set(valid, dotted, value)).encode()
    for name, values in endpoint.extra.items():
        for value in values:
            yield f"{name}={value!r:.30}", json.dumps(_set(valid, name, value)).encode()


class _Ids(dict):
    """The world's objects a path names, made only when it names them."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def __missing__(self, key):
        name = {"id": "paramedic", "session": "upload_session"}.get(key, key)
        return getattr(self.w, name).id


def _url(endpoint: Endpoint, w) -> str:
    return API + endpoint.path.format_map(_Ids(w))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_hostile_json_bodies(world, role, endpoint):
    url = _url(endpoint, world)
    caller = Caller(world.users[role])
    before = db_state()
    for label, raw in mutations(endpoint, endpoint.body(world)):
        response = caller.request(
            endpoint.method,
            url,
            data=raw,
            content_type="application/json",
            raise_request_exception=False,
        )
        assert 400 <= response.status_code < 500, (label, response.status_code, response.content)
        body = response.json()
        assert isinstance(body.get("code"), str) and body["code"], (label, body)
        assert db_state() == before, f"{label} changed something"


XRAY_FIELDS = {
    "task": ["\x00", "not-a-uuid", "x" * 10_000],
    "consultation_id": ["a\x00b", "x" * 10_000],
    "body_part": ["a\x00b", "x" * 10_000],
    "notes": ["a\x00b", "x" * 100_000],
    "captured_at": [*NOT_UTC, "\x00"],
}


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor", "other_paramedic", "doctor"])
def test_hostile_upload_fields(world, role):
    url = f"{API}/paramedics/{world.paramedic.id}/xray"
    caller = Caller(world.users[role])
    image = world.xray_content
    before = db_state()
    for name, values in XRAY_FIELDS.items():
        for value in values:
            form = {"image": SimpleUploadedFile("x.png", image), "task": str(world.task.id)}
            form[name] = value
            response = caller.request(
                "POST", url, data=form, format="multipart", raise_request_exception=False
            )
            assert 400 <= response.status_code < 500, (name, value[:20], response.content)
            assert response.json()["code"]
            assert db_state() == before, f"{name}={value[:20]!r} changed something"


# Last-Event-ID (header or ?last_event_id=) resumes a stream: only ASCII digits naming
# an event that exists or existed. `str.isdigit` accepts superscripts and other
# scripts' digits, which `int` then refuses (a 500) or reads as another number.
HOSTILE_LAST_EVENT_IDS = [
    "\u00b2",  # superscript two: isdigit() is true, int() fails
    "\u0661\u0662",  # Arabic-Indic "12": int() reads 12
    "\uff11\uff12",  # fullwidth "12"
    "-1",
    "+1",
    "1e3",
    "0x1f",
    "1_000",
    "9" * 19,
    "999999999999999999",  # beyond the newest event: would skip every live one
    "x'1",
]


@pytest.mark.parametrize("how", ["header", "query"])
@pytest.mark.parametrize(
    ("role", "path"), [("own_paramedic", "/paramedics/{id}/events"), ("supervisor", "/events")]
)
def test_hostile_last_event_ids(world, role, path, how):
    from integrations.live import latest_id

    url = API + path.format(id=world.paramedic.id)
    caller = Caller(world.users[role])
    newest = latest_id()
    assert newest > 0  # the world's assignments were logged
    for value in [*HOSTILE_LAST_EVENT_IDS, str(newest + 1)]:
        if how == "header":
            response = caller.get(url, HTTP_LAST_EVENT_ID=value, raise_request_exception=False)
        else:
            response = caller.get(url, {"last_event_id": value}, raise_request_exception=False)
        assert response.status_code == 400, (value, response.status_code)
        assert response.json()["code"] == "invalid_last_event_id", value
    for value in ("0", str(newest)):  # the start of the log and its newest event resume
        response = caller.get(url, HTTP_LAST_EVENT_ID=value)
        assert response.status_code == 200, value
        assert b"".join(response).decode().startswith("retry: ")


@pytest.mark.parametrize("path", ["/paramedics\x00", "/tasks/%00", "/tasks?status=\x00"])
def test_nul_in_an_api_url_is_a_json_400(world, path):
    response = Caller(world.users["supervisor"]).get(API + path)
    assert response.status_code in (400, 404)
    assert response.json()["code"] in ("invalid", "not_found")


def _configured_formatter(name: str) -> logging.Formatter:
    """The formatter `name` exactly as the settings configure it."""
    from django.conf import settings

    configurator = logging.config.DictConfigurator(copy.deepcopy(settings.LOGGING))
    return configurator.configure_formatter(copy.deepcopy(settings.LOGGING["formatters"][name]))


@pytest.mark.parametrize("name", ["plain", "json"])
def test_control_characters_from_a_client_never_reach_a_line_raw(client, db, name):
    """A path (or any value a client sends) with a newline, a carriage return or a
    terminal escape cannot forge a second line or drive the terminal."""
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(_configured_formatter(name))
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("paramedic.access")
    logger.addHandler(handler)
    try:
        client.get("/healthz/%0a2026-12-07 FAKE LINE%0d%1b[31m%c2%85%e2%80%a8%7f")
    finally:
        logger.removeHandler(handler)
    (line,) = lines
    assert not [c for c in line if unicodedata.category(c) in ("Cc", "Zl", "Zp")], repr(line)
    if name == "plain":
        assert "/healthz/\\n2026-12-07 FAKE LINE\\r\\x1b[31m\\x85\\u2028\\x7f 404 " in line
