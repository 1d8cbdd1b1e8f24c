"""Authorization and authentication across the whole API (OWASP API1, API3, API5).

`TABLE` lists every endpoint and method under /api/v1 (and DELETE/PUT/PATCH
attempts the router does not expose). Each row says what status each role
gets. Every row x role pair is one test that builds fresh state, sends the
request and checks the status, the error body (`code`, `detail`), and for every
refused request or successful read that nothing changed in the database or in
file storage.

Roles (DESIGN §4):

    anonymous        no Authorization header
    supervisor       staff user in `supervisors`
    service          the service that created the world's tasks
    other_service    another service account
    doctor           user in `doctors`
    own_paramedic    paramedic A, the paramedic named in every URL
    other_paramedic  paramedic B, acting on A's URL or A's task/X-ray

"Own/other" therefore means: for /paramedics/{id}/... the `{id}` is A, so A
acts on its own URL and B on someone else's; for /tasks/{id} and /xrays/{id}
the object is A's task or X-ray (created by `service`).

After the table come the list-leak tests, mass assignment on read-only
fields, requests that mix the caller's own URL with someone else's object,
and JWT attacks.
"""

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from types import SimpleNamespace
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from core.roles import SERVICES, SUPERVISORS
from integrations.models import OutboxEvent
from paramedics.models import Paramedic, ParamedicStatus
from tasks.models import EmergencyTask, TaskHistory, TaskStatus
from tasks.services import task_cancel, task_change_status
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task
from tests.xrays.samples import image_bytes
from tests.xrays.test_upload import stored_keys, upload
from xrays.downloads import TOKEN_SALT, download_link
from xrays.models import XrayImage

User = get_user_model()

API = "/api/v1"
ROLES = (
    "anonymous",
    "supervisor",
    "service",
    "other_service",
    "doctor",
    "own_paramedic",
    "other_paramedic",
)
ERROR_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
}
FORGED_AT = "2001-01-01T00:00:00Z"
NEW_PHONE = "+4930555000"
XRAY_A = image_bytes("PNG", color=(10, 20, 30))
XRAY_B = image_bytes("PNG", color=(40, 50, 60))
UPLOAD_JPEG = image_bytes("JPEG", color=(70, 80, 90))

# Every new test client loads the middleware on its first request, and WhiteNoise
# then walks every static file (~70 ms). One client for the whole module keeps
# several hundred requests fast; `Caller` sets its credentials per request.
_CLIENT = APIClient()


class Caller:
    """`tests.conftest.client_for(user)`, on the module's one test client."""

    def __init__(self, user=None, *, token: str | None = None, scheme: str = "Bearer"):
        if user is not None:
            token = str(AccessToken.for_user(user))
        self.headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"} if token else {}

    def request(self, method: str, *args, raise_request_exception=True, **kwargs):
        _CLIENT.credentials(**self.headers)
        _CLIENT.raise_request_exception = raise_request_exception
        return getattr(_CLIENT, method.lower())(*args, **kwargs)

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


# --- The world every cell starts from ------------------------------------------


class World:
    """Fresh state for one request (see the module docstring for the cast).

    task        created by `service`, assigned to A
    other_task  created by `other_service`, assigned to B
    pending     created by `service`, still pending (for /assign)
    spare       available with a fresh location: the only candidate
    xray        A's X-ray of `task`; other_xray: B's of `other_task` (made on first use)
    """

    def __init__(self, users, paramedic, other_paramedic, service, other_service):
        self.users = users
        self.paramedic = paramedic
        self.other_paramedic = other_paramedic
        self.task = put_on_task(paramedic, created_by=service)
        self.other_task = put_on_task(other_paramedic, created_by=other_service)
        self.pending = TaskFactory(created_by=service)
        self.spare = ParamedicFactory(
            badge_number="B-SPARE",
            last_lat=52.521,
            last_lon=13.41,
            last_location_at=timezone.now(),
        )
        paramedic.refresh_from_db()
        other_paramedic.refresh_from_db()

    @staticmethod
    def _upload(who: Paramedic, task: EmergencyTask, content: bytes) -> XrayImage:
        response = upload(Caller(who.user), who, task, content, name="scan.png")
        assert response.status_code == 201, response.content
        return XrayImage.objects.get(pk=response.json()["id"])

    @cached_property
    def xray(self) -> XrayImage:
        return self._upload(self.paramedic, self.task, XRAY_A)

    @cached_property
    def other_xray(self) -> XrayImage:
        return self._upload(self.other_paramedic, self.other_task, XRAY_B)

    # Download tokens for /xrays/{id}/file (filesystem mode, DESIGN §7).
    @property
    def valid_token(self) -> str:
        url = download_link(self.xray).url  # what GET /xrays/{id} hands out
        return parse_qs(urlsplit(url).query)["token"][0]

    @property
    def expired_token(self) -> str:
        issued = time.time() - settings.XRAY_DOWNLOAD_URL_SECONDS - 60
        with mock.patch("django.core.signing.time.time", return_value=issued):
            return signing.dumps(str(self.xray.pk), salt=TOKEN_SALT)

    @property
    def tampered_token(self) -> str:
        token = self.valid_token
        return token[:-1] + ("A" if token[-1] != "A" else "B")

    @property
    def other_xray_token(self) -> str:
        """A valid token, but for B's X-ray."""
        return signing.dumps(str(self.other_xray.pk), salt=TOKEN_SALT)


@pytest.fixture
def other_service(db):
    return UserFactory(username="other-service", groups=[SERVICES])


@pytest.fixture
def users(supervisor, service_user, other_service, doctor, paramedic, other_paramedic):
    return {
        "anonymous": None,
        "supervisor": supervisor,
        "service": service_user,
        "other_service": other_service,
        "doctor": doctor,
        "own_paramedic": paramedic.user,
        "other_paramedic": other_paramedic.user,
    }


@pytest.fixture
def world(users, paramedic, other_paramedic, service_user, other_service):
    return World(users, paramedic, other_paramedic, service_user, other_service)


WATCHED_MODELS = (
    User,
    User.groups.through,
    Paramedic,
    EmergencyTask,
    TaskHistory,
    XrayImage,
    OutboxEvent,
    OutstandingToken,
    BlacklistedToken,
)


def db_state() -> dict:
    """Every row of every model a request could touch, plus the stored files."""
    state = {m._meta.label: list(m.objects.order_by("pk").values()) for m in WATCHED_MODELS}
    state["files"] = sorted(stored_keys())
    return state


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


def _check_download(w, role, response):
    body = b"".join(response.streaming_content)
    response.close()
    assert body == XRAY_A
    assert response["Content-Disposition"].startswith("attachment")


# --- Request bodies --------------------------------------------------------------


def _new_paramedic(w):
    return {
        "badge_number": "NEW-1",
        "first_name": "New",
        "last_name": "Medic",
        "email": "new1@ems.example.org",
        "certification_level": "emt",
    }


def _put_paramedic(w):
    return _full_profile(w.paramedic)


def _full_profile(p: Paramedic) -> dict:
    return {
        "badge_number": p.badge_number,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "certification_level": p.certification_level,
        "phone": NEW_PHONE,
        "base_station": p.base_station,
    }


def _new_task(w):
    return {
        "request_id": "authz-req-1",
        "patient_id": "patient-77",
        "priority": "critical",
        "description": "Chest pain",
        "location": {"lat": 52.5, "lon": 13.4},
    }


def _xray_form(w):
    return {"image": SimpleUploadedFile("scan.jpg", UPLOAD_JPEG), "task": str(w.task.id)}


# --- The table -------------------------------------------------------------------


def roles(*, anon, sup, svc, other_svc, doc, own, other) -> dict[str, int]:
    """Expected status per role; keyword-only, so no row can leave a role out."""
    return dict(
        zip(ROLES, (anon, sup, svc, other_svc, doc, own, other), strict=True),
    )


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # under /api/v1; {id} is the collection's world object, {task_id} is A's task
    expect: dict[str, int]
    body: Callable | None = None
    check: Callable | None = None  # for 2xx answers
    subject: str | None = None  # World attribute {id} names, when not the default
    multipart: bool = False
    needs: tuple[str, ...] = ()  # World attributes to create before the request


DEFAULT_SUBJECT = {"paramedics": "paramedic", "tasks": "task", "xrays": "xray"}

# Who may do what (DESIGN §4, §5). Refusals: 401 anonymous, 403 a role outside its
# rights, 404 when even existence must not leak (another's task, X-ray, profile).
# A method the route does not have is 405 -- after the permission check, so a role
# with no business on the route at all still gets 403.
TABLE = [
    # -- paramedics -------------------------------------------------------------
    Row("GET", "/paramedics",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403),
        check=_check_roster),
    Row("POST", "/paramedics",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=403, other=403),
        body=_new_paramedic, check=_check_paramedic_created),
    Row("DELETE", "/paramedics",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405)),
    Row("GET", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404),
        check=_check_is_subject),
    Row("PUT", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404),
        body=_put_paramedic, check=_check_phone_changed),
    Row("PATCH", "/paramedics/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404),
        body=lambda w: {"phone": NEW_PHONE}, check=_check_phone_changed),
    Row("DELETE", "/paramedics/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405)),
    # -- a paramedic's tasks ----------------------------------------------------
    Row("GET", "/paramedics/{id}/tasks",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404),
        check=_check_own_tasks_only),
    Row("DELETE", "/paramedics/{id}/tasks",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405)),
    Row("POST", "/paramedics/{id}/tasks/{task_id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=200, other=404),
        body=lambda w: {"status": "in_progress"}, check=_check_started),
    Row("DELETE", "/paramedics/{id}/tasks/{task_id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405)),
    # -- a paramedic's X-rays ---------------------------------------------------
    Row("POST", "/paramedics/{id}/xray",
        roles(anon=401, sup=201, svc=403, other_svc=403, doc=403, own=201, other=404),
        body=_xray_form, multipart=True, check=_check_uploaded),
    Row("DELETE", "/paramedics/{id}/xray",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=403, own=405, other=405)),
    Row("GET", "/paramedics/{id}/xrays",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=200, own=200, other=404),
        check=_check_own_xrays_only, needs=("xray", "other_xray")),
    Row("DELETE", "/paramedics/{id}/xrays",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405)),
    # -- tasks ------------------------------------------------------------------
    Row("GET", "/tasks",
        roles(anon=401, sup=200, svc=200, other_svc=200, doc=403, own=403, other=403),
        check=_check_task_list),
    Row("POST", "/tasks",
        roles(anon=401, sup=201, svc=201, other_svc=201, doc=403, own=403, other=403),
        body=_new_task, check=_check_task_created),
    Row("DELETE", "/tasks",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403)),
    Row("GET", "/tasks/{id}",
        roles(anon=401, sup=200, svc=200, other_svc=404, doc=403, own=200, other=404),
        check=_check_task_detail),
    Row("PUT", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403),
        body=lambda w: {"status": "completed"}),
    Row("PATCH", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403),
        body=lambda w: {"status": "completed"}),
    Row("DELETE", "/tasks/{id}",
        roles(anon=401, sup=405, svc=405, other_svc=405, doc=403, own=403, other=403)),
    Row("GET", "/tasks/{id}/candidates",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403),
        check=_check_candidates),
    Row("POST", "/tasks/{id}/assign",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=403, own=403, other=403),
        body=lambda w: {"paramedic": str(w.spare.id)}, subject="pending",
        check=_check_assigned),
    Row("POST", "/tasks/{id}/cancel",
        roles(anon=401, sup=200, svc=200, other_svc=404, doc=403, own=403, other=403),
        body=lambda w: {"reason": "patient called back"}, check=_check_cancelled),
    # -- X-rays -----------------------------------------------------------------
    Row("GET", "/xrays", everyone(404)),  # no route: there is no global X-ray list
    Row("GET", "/xrays/{id}",
        roles(anon=401, sup=200, svc=403, other_svc=403, doc=200, own=200, other=404),
        check=_check_xray_detail),
    Row("PATCH", "/xrays/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405),
        body=lambda w: {"notes": "edited", "sha256": "0" * 64}),
    Row("DELETE", "/xrays/{id}",
        roles(anon=401, sup=405, svc=403, other_svc=403, doc=405, own=405, other=405)),
    # The download URL is a bearer capability: the signed token decides, a JWT is ignored.
    Row("GET", "/xrays/{id}/file?token={valid_token}", everyone(200), check=_check_download),
    Row("GET", "/xrays/{id}/file?token={expired_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file?token={tampered_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file?token={other_xray_token}", everyone(404)),
    Row("GET", "/xrays/{id}/file", everyone(404)),
    Row("DELETE", "/xrays/{id}/file?token={valid_token}", everyone(405)),
]  # fmt: skip

CELLS = [
    pytest.param(row, role, id=f"{row.method} {row.path} [{role}]")
    for row in TABLE
    for role in ROLES
]


class _Placeholders(dict):
    def __init__(self, world: World, row: Row):
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


# --- Lists never leak ------------------------------------------------------------


def _all_pages(client, url, query) -> tuple[int, set[str]]:
    """Walk every page one row at a time; return the reported count and every id."""
    ids, page = set(), 1
    while True:
        response = client.get(url, {**query, "page_size": 1, "page": page})
        assert response.status_code == 200, response.content
        data = response.json()
        ids |= {row["id"] for row in data["results"]}
        if not data["next"]:
            return data["count"], ids
        page += 1


class TestListsNeverLeak:
    @pytest.fixture
    def crowded(self, world, service_user, other_service, supervisor):
        """The world plus tasks in every state, of A's and of others'.

        A: `task` completed, then a new one from `other_service` (assigned).
        B: `other_task` completed, then a new one (assigned).
        Others: a cancelled one, two pending ones (one from the supervisor), and
        one `service` task that `spare` declined (pending again, nobody's).
        """
        a, b = world.paramedic, world.other_paramedic
        for who, task in ((a, world.task), (b, world.other_task)):
            for status in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
                task_change_status(task_id=task.pk, to_status=status, actor=who.user)
        put_on_task(a, created_by=other_service)
        put_on_task(b, created_by=other_service)
        cancelled = TaskFactory(created_by=other_service)
        task_cancel(task_id=cancelled.pk, actor=other_service, reason="called back")
        TaskFactory(created_by=other_service)
        TaskFactory(created_by=supervisor)
        declined = put_on_task(world.spare, created_by=service_user)
        task_change_status(
            task_id=declined.pk, to_status=TaskStatus.PENDING, actor=world.spare.user
        )
        world.xray, world.other_xray  # noqa: B018 - made on first use
        return world

    @staticmethod
    def _ids_of(**lookup) -> set[str]:
        return {
            str(pk) for pk in EmergencyTask.objects.filter(**lookup).values_list("pk", flat=True)
        }

    def test_paramedic_task_list_has_only_own_rows_under_any_filter(self, crowded):
        w = crowded
        own = self._ids_of(paramedic=w.paramedic)
        assert len(own) == 2
        assert EmergencyTask.objects.count() == 9
        client = Caller(w.paramedic.user)
        url = f"{API}/paramedics/{w.paramedic.id}/tasks"
        for query in (
            {"status": "assigned"},
            {"status": "completed"},
            {"status": ["pending", "cancelled", "in_progress"]},
            {"updated_after": "2000-01-01T00:00:00Z"},
            {"ordering": "-priority"},
        ):
            count, ids = _all_pages(client, url, query)
            assert ids <= own, query
            assert count == len(ids), query
        assert _all_pages(client, url, {"status": list(TaskStatus.values)}) == (2, own)
        # `paramedic` is not a filter here: refused as invalid input, never ignored.
        response = client.get(url, {"paramedic": str(w.other_paramedic.id)})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert "paramedic" in response.json()["errors"]
        # B's list does not exist for A.
        other = client.get(f"{API}/paramedics/{w.other_paramedic.id}/tasks")
        assert other.status_code == 404

    def test_paramedic_xray_list_has_only_own_rows(self, crowded):
        w = crowded
        client = Caller(w.paramedic.user)
        url = f"{API}/paramedics/{w.paramedic.id}/xrays"
        assert _all_pages(client, url, {}) == (1, {str(w.xray.id)})
        # Not filters here: refused as invalid input, never ignored.
        for query in ({"paramedic": str(w.other_paramedic.id)}, {"task": str(w.other_task.id)}):
            response = client.get(url, query)
            assert response.status_code == 400, query
            assert str(w.other_xray.id) not in response.content.decode()
        for path in (f"/paramedics/{w.other_paramedic.id}/xrays", f"/xrays/{w.other_xray.id}"):
            response = client.get(API + path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"

    def test_service_task_list_never_shows_another_services_tasks(self, crowded, service_user):
        w = crowded
        mine = self._ids_of(created_by=service_user)
        assert len(mine) == 3  # A's completed task, `pending`, the declined one
        client = Caller(service_user)
        for query in (
            {"paramedic": str(w.other_paramedic.id)},
            {"paramedic": str(w.paramedic.id)},
            {"status": "completed"},
            {"status": ["assigned", "cancelled", "in_progress"]},
            {"priority": ["critical", "urgent", "routine"]},
            {"created_after": "2000-01-01T00:00:00Z", "updated_after": "2000-01-01T00:00:00Z"},
            {"ordering": "-updated_at"},
        ):
            count, ids = _all_pages(client, f"{API}/tasks", query)
            assert ids <= mine, query
            assert count == len(ids), query
        assert _all_pages(client, f"{API}/tasks", {}) == (3, mine)
        # other_task, A's and B's new ones, the cancelled and a pending one.
        theirs = self._ids_of(created_by=w.users["other_service"])
        assert _all_pages(Caller(w.users["other_service"]), f"{API}/tasks", {}) == (5, theirs)

    @pytest.mark.parametrize("role", ["own_paramedic", "doctor", "service"])
    @pytest.mark.parametrize(
        "query", [{}, {"search": "B-2"}, {"status": "on_task"}, {"page_size": 200}]
    )
    def test_only_supervisors_list_the_roster(self, users, other_paramedic, role, query):
        response = Caller(users[role]).get(f"{API}/paramedics", query)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert other_paramedic.badge_number not in response.content.decode()


# --- Mass assignment on read-only fields (API3) ----------------------------------


def _actor(role, paramedic, supervisor):
    return paramedic.user if role == "own_paramedic" else supervisor


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
@pytest.mark.parametrize("method", ["patch", "put"])
def test_nobody_sets_on_task_by_hand(paramedic, supervisor, role, method):
    body = {"status": "on_task"}
    if method == "put":
        body = {**_full_profile(paramedic), **body}
    client = Caller(_actor(role, paramedic, supervisor))
    before = db_state()

    response = getattr(client, method)(f"{API}/paramedics/{paramedic.id}", body, format="json")

    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "invalid"
    assert "status" in data["errors"]
    assert db_state() == before


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
def test_paramedic_update_ignores_read_only_fields(paramedic, other_paramedic, supervisor, role):
    theirs = put_on_task(other_paramedic)
    paramedic.refresh_from_db()
    original = Paramedic.objects.filter(pk=paramedic.pk).values().get()
    started = timezone.now()

    response = Caller(_actor(role, paramedic, supervisor)).patch(
        f"{API}/paramedics/{paramedic.id}",
        {
            "phone": NEW_PHONE,
            "id": str(uuid.uuid4()),
            "current_task": str(theirs.id),
            "created_at": FORGED_AT,
            "updated_at": FORGED_AT,
            "user": other_paramedic.user.pk,
            "is_staff": True,
            "is_superuser": True,
            "groups": [SUPERVISORS],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["id"], data["phone"], data["current_task"]) == (str(paramedic.id), NEW_PHONE, None)
    now = Paramedic.objects.filter(pk=paramedic.pk).values().get()
    changed = {k for k in now if now[k] != original[k]}
    assert changed == {"phone", "updated_at"}
    assert now["updated_at"] >= started
    user = User.objects.get(pk=paramedic.user.pk)
    assert not (user.is_staff or user.is_superuser or user.groups.exists())
    other_paramedic.refresh_from_db()
    assert (other_paramedic.current_task_id, other_paramedic.user_id) == (
        theirs.id,
        other_paramedic.user.pk,
    )


def test_paramedic_create_ignores_read_only_fields(supervisor, other_paramedic):
    theirs = put_on_task(other_paramedic)
    forged_id = str(uuid.uuid4())
    started = timezone.now()
    response = Caller(supervisor).post(
        f"{API}/paramedics",
        {
            **_new_paramedic(None),
            "id": forged_id,
            "current_task": str(theirs.id),
            "created_at": FORGED_AT,
            "updated_at": FORGED_AT,
            "user": supervisor.pk,
            "is_staff": True,
            "is_superuser": True,
            "groups": [SUPERVISORS],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    created = Paramedic.objects.get(pk=response.json()["id"])
    assert str(created.pk) != forged_id
    assert (created.status, created.current_task_id) == (ParamedicStatus.OFF_DUTY, None)
    assert created.created_at >= started
    assert created.user != supervisor
    assert not (created.user.is_staff or created.user.is_superuser or created.user.groups.exists())


@pytest.mark.parametrize("role", ["service", "supervisor"])
def test_task_create_ignores_state_and_ownership_fields(users, paramedic, other_service, role):
    caller = users[role]
    started = timezone.now()
    forged_id = str(uuid.uuid4())
    response = Caller(caller).post(
        f"{API}/tasks",
        {
            **_new_task(None),
            "id": forged_id,
            "status": "in_progress",
            "paramedic": str(paramedic.id),
            "assigned_at": FORGED_AT,
            "started_at": FORGED_AT,
            "created_at": FORGED_AT,
            "created_by": other_service.pk,
            "patient_details": {"name": "forged"},
            "history": [{"from_status": "pending", "to_status": "completed", "note": "forged"}],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    task = EmergencyTask.objects.get(pk=response.json()["id"])
    assert str(task.pk) != forged_id
    assert (task.status, task.paramedic_id, task.created_by) == (TaskStatus.PENDING, None, caller)
    assert (task.assigned_at, task.started_at, task.patient_details) == (None, None, None)
    assert task.created_at >= started
    assert list(task.history.values_list("from_status", "to_status")) == [("", "pending")]
    paramedic.refresh_from_db()
    assert (paramedic.status, paramedic.current_task_id) == (ParamedicStatus.AVAILABLE, None)


def test_assign_ignores_extra_fields(world, supervisor, other_service):
    started = timezone.now()
    pending = world.pending
    response = Caller(supervisor).post(
        f"{API}/tasks/{pending.id}/assign",
        {
            "paramedic": str(world.spare.id),
            "status": "completed",
            "assigned_at": FORGED_AT,
            "completed_at": FORGED_AT,
            "created_by": other_service.pk,
            "request_id": "forged",
            "history": [],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == TaskStatus.ASSIGNED
    assert parse_datetime(data["assigned_at"]) >= started
    task = EmergencyTask.objects.get(pk=pending.pk)
    assert (task.status, task.paramedic_id) == (TaskStatus.ASSIGNED, world.spare.id)
    assert task.assigned_at >= started
    assert task.completed_at is None
    assert (task.created_by_id, task.request_id) == (pending.created_by_id, pending.request_id)
    assert [h["to_status"] for h in data["history"]] == ["pending", "assigned"]


def test_status_report_ignores_extra_fields(world):
    started = timezone.now()
    a, task = world.paramedic, world.task
    response = Caller(a.user).post(
        f"{API}/paramedics/{a.id}/tasks/{task.id}",
        {
            "status": "in_progress",
            "paramedic": str(world.other_paramedic.id),
            "assigned_at": FORGED_AT,
            "started_at": FORGED_AT,
            "completed_at": FORGED_AT,
            "created_by": world.users["other_service"].pk,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    fresh = EmergencyTask.objects.get(pk=task.pk)
    assert (fresh.status, fresh.paramedic_id) == (TaskStatus.IN_PROGRESS, a.id)
    assert fresh.started_at >= started
    assert (fresh.assigned_at, fresh.completed_at) == (task.assigned_at, None)
    assert fresh.created_by_id == task.created_by_id


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
def test_xray_upload_ignores_computed_and_ownership_fields(
    paramedic, other_paramedic, supervisor, role
):
    caller = _actor(role, paramedic, supervisor)
    task = put_on_task(paramedic)
    forged_id = str(uuid.uuid4())
    started = timezone.now()
    content = image_bytes("PNG", size=(64, 48))

    response = upload(
        Caller(caller),
        paramedic,
        task,
        content,
        name="../../etc/evil.dcm",
        id=forged_id,
        sha256="0" * 64,
        size_bytes="1",
        format="dicom",
        content_type="application/dicom",
        width="9999",
        height="9999",
        paramedic=str(other_paramedic.id),
        uploaded_by=str(other_paramedic.user.pk),
        file="xrays/2001/01/forged.dcm",
        xray_service_id="xr-forged",
        created_at=FORGED_AT,
    )

    assert response.status_code == 201, response.content
    xray = XrayImage.objects.get(pk=response.json()["id"])
    assert str(xray.pk) != forged_id
    assert xray.sha256 == hashlib.sha256(content).hexdigest()
    assert (xray.size_bytes, xray.format, xray.content_type) == (len(content), "png", "image/png")
    assert (xray.width, xray.height) == (64, 48)
    assert (xray.paramedic, xray.uploaded_by, xray.task) == (paramedic, caller, task)
    assert re.fullmatch(r"xrays/\d{4}/\d{2}/[0-9a-f-]{36}\.png", xray.file.name)
    assert xray.xray_service_id == ""
    assert xray.created_at >= started
    with default_storage.open(xray.file.name, "rb") as handle:
        assert handle.read() == content
    assert stored_keys() == [xray.file.name]


# --- The caller's own URL, someone else's object (BOLA through the nested id) -----


def _unknown_task():
    return SimpleNamespace(id=uuid.uuid4())


@pytest.mark.parametrize("target", ["anothers_task", "pending_task", "unknown_task"])
def test_status_report_on_own_url_with_anothers_task_is_404(world, target):
    """B reports on its own URL, naming A's task (or a pending or an unknown one)."""
    b = world.other_paramedic
    task = {"anothers_task": world.task, "pending_task": world.pending}.get(target)
    task = task or _unknown_task()
    client = Caller(b.user)
    before = db_state()
    response = client.post(
        f"{API}/paramedics/{b.id}/tasks/{task.id}", {"status": "in_progress"}, format="json"
    )
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    assert db_state() == before


@pytest.mark.parametrize("target", ["anothers_task", "pending_task"])
def test_upload_on_own_url_with_anothers_task_does_not_reveal_it(world, target):
    b = world.other_paramedic
    task = world.task if target == "anothers_task" else world.pending
    client = Caller(b.user)
    unknown = upload(client, b, _unknown_task(), XRAY_B)
    assert unknown.status_code == 404

    before = db_state()
    response = upload(client, b, task, XRAY_B)
    assert db_state() == before
    assert (response.status_code, response.json()) == (unknown.status_code, unknown.json())


def test_upload_on_own_url_with_anothers_task_stores_nothing(world):
    """The part of the above that holds today: nothing is written or stored."""
    b = world.other_paramedic
    client = Caller(b.user)
    before = db_state()
    response = upload(client, b, world.task, XRAY_B)
    assert response.status_code in (400, 404)
    assert {"code", "detail"} <= response.json().keys()
    assert db_state() == before


# --- JWT -----------------------------------------------------------------------


def _bearer(token: str, scheme: str = "Bearer") -> Caller:
    return Caller(token=token, scheme=scheme)


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _break_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"


def _tampered_signature(user) -> str:
    return _break_signature(str(AccessToken.for_user(user)))


def _claims(user) -> dict:
    return jwt.decode(str(AccessToken.for_user(user)), options={"verify_signature": False})


def _tampered_payload(user) -> str:
    """A doctor's genuine signature under the supervisor's claims."""
    doctor = UserFactory(username="dr-escalate", groups=["doctors"])
    header, _, signature = str(AccessToken.for_user(doctor)).split(".")
    payload = str(AccessToken.for_user(user)).split(".")[1]
    return f"{header}.{payload}.{signature}"


def _alg_none(user) -> str:
    return jwt.encode(_claims(user), key=None, algorithm="none")


def _hs512_right_key(user) -> str:
    return jwt.encode(_claims(user), key=settings.SECRET_KEY, algorithm="HS512")


def _hs256_wrong_key(user) -> str:
    return jwt.encode(_claims(user), key="x" * 64, algorithm="HS256")


def _refresh_as_access(user) -> str:
    return str(RefreshToken.for_user(user))


def _garbage(user) -> str:
    return "not.a.jwt"


BAD_ACCESS_TOKENS = {
    "expired": _expired,
    "tampered_signature": _tampered_signature,
    "tampered_payload": _tampered_payload,
    "alg_none": _alg_none,
    "hs512_right_key": _hs512_right_key,
    "hs256_wrong_key": _hs256_wrong_key,
    "refresh_as_access": _refresh_as_access,
    "garbage": _garbage,
}


@pytest.mark.filterwarnings("ignore:The HMAC key")  # PyJWT on the forged keys
@pytest.mark.parametrize("kind", list(BAD_ACCESS_TOKENS))
def test_bad_access_tokens_are_401(supervisor, paramedic, kind):
    token = BAD_ACCESS_TOKENS[kind](supervisor)  # a supervisor's identity: the worst case
    for url in (f"{API}/paramedics", f"{API}/paramedics/{paramedic.id}", f"{API}/tasks"):
        response = _bearer(token).get(url)
        assert response.status_code == 401, (kind, url, response.content)
        data = response.json()
        assert {"code", "detail"} <= data.keys()
        assert data["code"] == "token_not_valid", data
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_good_token_passes(supervisor):
    """The control for the above: the same request with a genuine token is 200."""
    response = _bearer(str(AccessToken.for_user(supervisor))).get(f"{API}/paramedics")
    assert response.status_code == 200


def test_another_auth_scheme_is_not_authenticated(supervisor):
    token = str(AccessToken.for_user(supervisor))
    for scheme in ("JWT", "Token", "Basic"):
        response = _bearer(token, scheme).get(f"{API}/paramedics")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("fate", ["deleted", "inactive"])
def test_tokens_of_deleted_or_inactive_users_are_401(db, fate):
    user = UserFactory(username="gone-sup", is_staff=True, groups=[SUPERVISORS])
    token = str(AccessToken.for_user(user))
    if fate == "deleted":
        user.delete()
    else:
        User.objects.filter(pk=user.pk).update(is_active=False)
    response = _bearer(token).get(f"{API}/paramedics")
    assert response.status_code == 401, response.content
    data = response.json()
    assert {"code", "detail"} <= data.keys()
    assert data["code"] == {"deleted": "user_not_found", "inactive": "user_inactive"}[fate]


def _obtain(username="B-1", password="correct-horse-battery") -> dict:
    response = Caller().post(
        f"{API}/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(token: str):
    # A server error comes back as a 500 response rather than a raised exception.
    return Caller().post(
        f"{API}/auth/token/refresh/",
        {"refresh": token},
        format="json",
        raise_request_exception=False,
    )


def _assert_401(response, code="token_not_valid"):
    assert response.status_code == 401, response.content
    data = response.json()
    assert {"code", "detail"} <= data.keys()
    assert data["code"] == code, data


def test_rotated_out_refresh_token_is_401(paramedic):
    first = _obtain()["refresh"]
    rotated = _refresh(first)
    assert rotated.status_code == 200
    _assert_401(_refresh(first))
    # The replay did not burn the legitimate successor.
    assert _refresh(rotated.json()["refresh"]).status_code == 200


def test_logged_out_refresh_token_is_401(paramedic):
    refresh = _obtain()["refresh"]
    response = Caller().post(f"{API}/auth/token/blacklist/", {"refresh": refresh})
    assert response.status_code == 200
    _assert_401(_refresh(refresh))


@pytest.mark.filterwarnings("ignore:The HMAC key")
@pytest.mark.parametrize("kind", ["access_as_refresh", "expired", "tampered", "alg_none"])
def test_bad_refresh_tokens_are_401(paramedic, kind):
    pair = _obtain()
    if kind == "access_as_refresh":
        token = pair["access"]
    elif kind == "expired":
        refresh = RefreshToken.for_user(paramedic.user)
        refresh.set_exp(lifetime=-timedelta(seconds=1))
        token = str(refresh)
    elif kind == "tampered":
        token = _break_signature(pair["refresh"])
    else:
        claims = jwt.decode(pair["refresh"], options={"verify_signature": False})
        token = jwt.encode(claims, key=None, algorithm="none")
    _assert_401(_refresh(token))


def test_refresh_token_of_an_inactive_user_is_401(db):
    user = UserFactory(username="leaver")
    refresh = _obtain("leaver")["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    _assert_401(_refresh(refresh), code="no_active_account")


def test_refresh_token_of_a_deleted_user_is_401(db):
    user = UserFactory(username="deleted-later")
    refresh = _obtain("deleted-later")["refresh"]
    user.delete()
    _assert_401(_refresh(refresh), code="no_active_account")
