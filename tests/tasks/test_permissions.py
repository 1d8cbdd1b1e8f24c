"""Role x endpoint matrix for the task endpoints (DESIGN §4, §5, §6).

Every case starts from fresh state (`world`):
- `task`: created by `service`, assigned to `paramedic` ("self") through the
  state machine;
- `pending`: a second task from `service`, still pending, for /assign;
- `spare`: an available paramedic with a fresh location, the one /assign picks
  and /candidates lists.

"other_service" is a second service account and "other_paramedic" a second
paramedic: neither may learn that the other's task exists (404), while a role
outside its rights altogether gets 403.
"""

from dataclasses import dataclass

import pytest
from django.utils import timezone

from core.roles import SERVICES
from paramedics.models import Paramedic, ParamedicStatus
from tasks.models import EmergencyTask, TaskStatus
from tests.conftest import client_for
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task

ROLES = [
    "anonymous",
    "supervisor",
    "service",
    "other_service",
    "doctor",
    "self",
    "other_paramedic",
]
ERROR_CODES = {401: "not_authenticated", 403: "permission_denied", 404: "not_found"}


@dataclass
class World:
    task: EmergencyTask
    pending: EmergencyTask
    spare: Paramedic
    paramedic: Paramedic


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
        "self": paramedic.user,
        "other_paramedic": other_paramedic.user,
    }


@pytest.fixture
def world(users, service_user, paramedic):
    return World(
        task=put_on_task(paramedic, created_by=service_user),
        pending=TaskFactory(created_by=service_user),
        spare=ParamedicFactory(
            badge_number="B-SPARE",
            last_lat=52.521,
            last_lon=13.41,
            last_location_at=timezone.now(),
        ),
        paramedic=paramedic,
    )


def _create_body():
    return {
        "request_id": "matrix-req-1",
        "patient_id": "patient-77",
        "priority": "critical",
        "description": "Chest pain",
        "address": "2 Example Street",
        "location": {"lat": 52.5, "lon": 13.4},
    }


# (name, method, url, body, expected status by role)
MATRIX = [
    (
        "list",
        "get",
        lambda w: "/api/v1/tasks",
        None,
        dict(
            anonymous=401,
            supervisor=200,
            service=200,
            other_service=200,
            doctor=403,
            self=403,
            other_paramedic=403,
        ),
    ),
    (
        "create",
        "post",
        lambda w: "/api/v1/tasks",
        lambda w: _create_body(),
        dict(
            anonymous=401,
            supervisor=201,
            service=201,
            other_service=201,
            doctor=403,
            self=403,
            other_paramedic=403,
        ),
    ),
    (
        "retrieve",
        "get",
        lambda w: f"/api/v1/tasks/{w.task.id}",
        None,
        dict(
            anonymous=401,
            supervisor=200,
            service=200,
            other_service=404,
            doctor=403,
            self=200,
            other_paramedic=404,
        ),
    ),
    (
        "candidates",
        "get",
        lambda w: f"/api/v1/tasks/{w.task.id}/candidates",
        None,
        dict(
            anonymous=401,
            supervisor=200,
            service=403,
            other_service=403,
            doctor=403,
            self=403,
            other_paramedic=403,
        ),
    ),
    (
        "assign",
        "post",
        lambda w: f"/api/v1/tasks/{w.pending.id}/assign",
        lambda w: {"paramedic": str(w.spare.id)},
        dict(
            anonymous=401,
            supervisor=200,
            service=403,
            other_service=403,
            doctor=403,
            self=403,
            other_paramedic=403,
        ),
    ),
    (
        "cancel",
        "post",
        lambda w: f"/api/v1/tasks/{w.task.id}/cancel",
        lambda w: {"reason": "patient called back"},
        dict(
            anonymous=401,
            supervisor=200,
            service=200,
            other_service=404,
            doctor=403,
            self=403,
            other_paramedic=403,
        ),
    ),
    (
        "paramedic_tasks",
        "get",
        lambda w: f"/api/v1/paramedics/{w.paramedic.id}/tasks",
        None,
        dict(
            anonymous=401,
            supervisor=200,
            service=403,
            other_service=403,
            doctor=403,
            self=200,
            other_paramedic=404,
        ),
    ),
    (
        "status_update",
        "post",
        lambda w: f"/api/v1/paramedics/{w.paramedic.id}/tasks/{w.task.id}",
        lambda w: {"status": "in_progress"},
        dict(
            anonymous=401,
            supervisor=200,
            service=403,
            other_service=403,
            doctor=403,
            self=200,
            other_paramedic=404,
        ),
    ),
]


def _snapshot(world: World) -> tuple:
    """What a refused request must leave untouched."""
    world.task.refresh_from_db()
    world.pending.refresh_from_db()
    world.spare.refresh_from_db()
    return (
        EmergencyTask.objects.count(),
        world.task.status,
        world.task.paramedic_id,
        world.pending.status,
        world.pending.paramedic_id,
        world.spare.status,
    )


def _check_success(endpoint: str, role: str, world: World, data) -> None:
    """The 2xx answers carry what the endpoint promises, and nothing of others'."""
    if endpoint == "list":
        ids = {row["id"] for row in data["results"]}
        if role == "other_service":
            assert ids == set()
        elif role == "service":
            assert ids == {str(world.task.id), str(world.pending.id)}
        else:
            assert {str(world.task.id), str(world.pending.id)} <= ids
    elif endpoint == "create":
        assert data["status"] == TaskStatus.PENDING
        assert data["paramedic"] is None
        assert data["request_id"] == "matrix-req-1"
    elif endpoint == "retrieve":
        assert data["id"] == str(world.task.id)
        assert [h["to_status"] for h in data["history"]] == ["pending", "assigned"]
    elif endpoint == "candidates":
        assert [c["paramedic"] for c in data] == [str(world.spare.id)]
    elif endpoint == "assign":
        assert data["status"] == TaskStatus.ASSIGNED
        assert data["paramedic"] == str(world.spare.id)
        world.spare.refresh_from_db()
        assert world.spare.status == ParamedicStatus.ON_TASK
    elif endpoint == "cancel":
        assert data["status"] == TaskStatus.CANCELLED
        world.paramedic.refresh_from_db()
        assert world.paramedic.status == ParamedicStatus.AVAILABLE
        assert world.paramedic.current_task_id is None
    elif endpoint == "paramedic_tasks":
        assert [row["id"] for row in data["results"]] == [str(world.task.id)]
    elif endpoint == "status_update":
        assert data["status"] == TaskStatus.IN_PROGRESS
        assert data["started_at"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("endpoint", "method", "url", "body", "expected"),
    MATRIX,
    ids=[row[0] for row in MATRIX],
)
def test_it_enforces_role_matrix(users, world, role, endpoint, method, url, body, expected):
    client = client_for(users[role])
    before = _snapshot(world)

    response = getattr(client, method)(
        url(world), data=body(world) if body else None, format="json"
    )

    assert response.status_code == expected[role], response.content
    data = response.json()
    if response.status_code >= 400:
        assert {"code", "detail"} <= data.keys()
        assert data["code"] == ERROR_CODES[response.status_code]
        assert _snapshot(world) == before, "a refused request changed state"
    else:
        _check_success(endpoint, role, world, data)


def test_it_answers_401_with_www_authenticate(anon_client, world):
    response = anon_client.get(f"/api/v1/tasks/{world.task.id}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_404_for_unknown_and_malformed_ids(supervisor_client, world):
    for url in ("/api/v1/tasks/00000000-0000-0000-0000-000000000000", "/api/v1/tasks/nope"):
        response = supervisor_client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_tasks_are_never_edited_or_deleted_through_the_api(supervisor_client, world, method):
    response = getattr(supervisor_client, method)(
        f"/api/v1/tasks/{world.task.id}", {"status": "completed"}, format="json"
    )
    assert response.status_code == 405
    assert {"code", "detail"} <= response.json().keys()
    world.task.refresh_from_db()
    assert world.task.status == TaskStatus.ASSIGNED


class TestListScoping:
    def test_service_never_sees_another_services_tasks(
        self, service_user, other_service, supervisor, paramedic, other_paramedic
    ):
        mine = {
            put_on_task(paramedic, created_by=service_user).pk,
            TaskFactory(created_by=service_user).pk,
        }
        put_on_task(other_paramedic, created_by=other_service)
        TaskFactory(created_by=other_service)
        TaskFactory(created_by=supervisor)
        client = client_for(service_user)

        for query in (
            {"page_size": 200},
            {"status": ["pending", "assigned"]},
            {"paramedic": str(other_paramedic.id)},
            {"priority": "urgent"},
            {"updated_after": "2000-01-01T00:00:00Z"},
        ):
            response = client.get("/api/v1/tasks", query)
            assert response.status_code == 200, response.content
            ids = {row["id"] for row in response.json()["results"]}
            assert ids <= {str(pk) for pk in mine}, query
        everything = client.get("/api/v1/tasks", {"page_size": 200}).json()
        assert everything["count"] == 2

    def test_paramedic_list_never_contains_another_paramedics_tasks(
        self, paramedic, other_paramedic, supervisor
    ):
        own = put_on_task(paramedic)
        put_on_task(other_paramedic)
        TaskFactory()  # pending, nobody's
        client = client_for(paramedic.user)

        for query in ({}, {"status": "assigned"}, {"page_size": 200}):
            response = client.get(f"/api/v1/paramedics/{paramedic.id}/tasks", query)
            assert response.status_code == 200
            assert [row["id"] for row in response.json()["results"]] == [str(own.id)]
        # Another paramedic's list does not even exist for it.
        response = client.get(f"/api/v1/paramedics/{other_paramedic.id}/tasks")
        assert response.status_code == 404

    def test_paramedic_cannot_move_another_paramedics_task_through_own_url(
        self, paramedic, other_paramedic
    ):
        theirs = put_on_task(other_paramedic)
        response = client_for(paramedic.user).post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{theirs.id}",
            {"status": "in_progress"},
            format="json",
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        theirs.refresh_from_db()
        assert theirs.status == TaskStatus.ASSIGNED

    def test_a_declined_task_leaves_the_paramedics_reach(self, paramedic):
        task = put_on_task(paramedic)
        client = client_for(paramedic.user)
        declined = client.post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}",
            {"status": "pending", "note": "vehicle breakdown"},
            format="json",
        )
        assert declined.status_code == 200, declined.content

        assert client.get(f"/api/v1/tasks/{task.id}").status_code == 404
        listed = client.get(f"/api/v1/paramedics/{paramedic.id}/tasks").json()
        assert listed["count"] == 0

    def test_service_reusing_anothers_request_id_learns_nothing(self, service_user, other_service):
        theirs = TaskFactory(created_by=other_service, request_id="shared-1")
        body = {**_create_body(), "request_id": "shared-1"}
        response = client_for(service_user).post("/api/v1/tasks", body, format="json")
        assert response.status_code == 409
        data = response.json()
        assert {"code", "detail"} <= data.keys()
        assert str(theirs.id) not in response.content.decode()
        assert theirs.patient_id not in response.content.decode()


def test_create_ignores_state_and_ownership_fields(service_user, other_service, paramedic):
    body = {
        **_create_body(),
        "id": "11111111-1111-1111-1111-111111111111",
        "status": "completed",
        "paramedic": str(paramedic.id),
        "created_by": other_service.pk,
        "created_at": "2001-01-01T00:00:00Z",
        "updated_at": "2001-01-01T00:00:00Z",
        "assigned_at": "2001-01-01T00:00:00Z",
        "completed_at": "2001-01-01T00:00:00Z",
        "history": [{"from_status": "assigned", "to_status": "completed", "note": "forged"}],
    }
    started = timezone.now()
    response = client_for(service_user).post("/api/v1/tasks", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["id"] != body["id"]
    assert data["status"] == TaskStatus.PENDING
    assert data["paramedic"] is None
    assert data["assigned_at"] is None
    assert data["completed_at"] is None
    assert [(h["from_status"], h["to_status"]) for h in data["history"]] == [(None, "pending")]
    task = EmergencyTask.objects.get(pk=data["id"])
    assert task.created_by == service_user
    assert task.created_at >= started
    assert task.updated_at >= started
    paramedic.refresh_from_db()
    assert paramedic.status == ParamedicStatus.AVAILABLE
    assert paramedic.current_task_id is None
