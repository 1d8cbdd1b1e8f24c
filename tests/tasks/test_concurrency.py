"""Races decided by PostgreSQL, with real threads and real connections (design §6).

Each thread has its own database connection; a barrier releases them together
so the requests overlap inside the database.
"""

import pytest

from paramedics.models import Paramedic, ParamedicStatus
from tasks.models import EmergencyTask, TaskHistory, TaskStatus
from tests.factories import ParamedicFactory, TaskFactory, UserFactory
from tests.helpers import client_for, in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def test_one_paramedic_many_tasks_exactly_one_wins(supervisor):
    paramedic = ParamedicFactory()
    tasks = TaskFactory.create_batch(THREADS)

    def assign(i):
        return client_for(supervisor).post(
            f"/api/v1/tasks/{tasks[i].id}/assign", {"paramedic": str(paramedic.id)}, format="json"
        )

    responses = in_parallel(THREADS, assign)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (THREADS - 1), [r.content for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "paramedic_unavailable"
    }
    winner = next(r.json() for r in responses if r.status_code == 200)
    paramedic.refresh_from_db()
    assert paramedic.status == ParamedicStatus.ON_TASK
    assert str(paramedic.current_task_id) == winner["id"]
    assert EmergencyTask.objects.filter(status=TaskStatus.ASSIGNED).count() == 1
    assert EmergencyTask.objects.filter(status=TaskStatus.PENDING).count() == THREADS - 1
    assert TaskHistory.objects.filter(to_status=TaskStatus.ASSIGNED).count() == 1


def test_two_supervisors_one_task_exactly_one_wins(supervisor):
    second_supervisor = UserFactory(username="sup-2", is_staff=True, groups=["supervisors"])
    paramedics = ParamedicFactory.create_batch(2)
    task = TaskFactory()
    users = [supervisor, second_supervisor]

    def assign(i):
        return client_for(users[i % 2]).post(
            f"/api/v1/tasks/{task.id}/assign",
            {"paramedic": str(paramedics[i % 2].id)},
            format="json",
        )

    responses = in_parallel(2, assign)

    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "invalid_transition"
    task.refresh_from_db()
    statuses = sorted(Paramedic.objects.values_list("status", flat=True))
    assert statuses == [ParamedicStatus.AVAILABLE, ParamedicStatus.ON_TASK]
    assert Paramedic.objects.get(status=ParamedicStatus.ON_TASK).pk == task.paramedic_id


def test_auto_assign_races_hand_out_distinct_paramedics(supervisor):
    """{} assigns the top candidate; racing requests fall through to the next one."""
    from django.utils import timezone

    now = timezone.now()
    for i in range(3):
        ParamedicFactory(last_lat=52.5 + i * 0.01, last_lon=13.4, last_location_at=now)
    tasks = TaskFactory.create_batch(5, lat=52.5, lon=13.4)

    def assign(i):
        return client_for(supervisor).post(f"/api/v1/tasks/{tasks[i].id}/assign", {}, format="json")

    responses = in_parallel(5, assign)

    ok = [r.json() for r in responses if r.status_code == 200]
    refused = [r.json()["code"] for r in responses if r.status_code != 200]
    assert len(ok) == 3, [r.content for r in responses]
    assert len({t["paramedic"] for t in ok}) == 3
    assert set(refused) <= {"no_available_paramedic", "paramedic_unavailable"}
    assert Paramedic.objects.filter(status=ParamedicStatus.AVAILABLE).count() == 0


def test_concurrent_intake_of_one_request_creates_one_task(service_user):
    body = {
        "request_id": "burst-1",
        "patient_id": "p-1",
        "priority": "urgent",
        "location": {"lat": 48.1, "lon": 11.6},
    }

    def submit(i):
        return client_for(service_user).post("/api/v1/tasks", body, format="json")

    responses = in_parallel(THREADS, submit)

    assert sorted(r.status_code for r in responses) == [200] * (THREADS - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert EmergencyTask.objects.filter(request_id="burst-1").count() == 1
    assert TaskHistory.objects.count() == 1


def test_status_change_and_assignment_do_not_lose_each_other(supervisor):
    """A paramedic going off duty races an assignment: the result is consistent."""
    paramedic = ParamedicFactory()
    task = TaskFactory()

    def act(i):
        if i == 0:
            return client_for(supervisor).post(
                f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(paramedic.id)}, format="json"
            )
        return client_for(paramedic.user).patch(
            f"/api/v1/paramedics/{paramedic.id}", {"status": "off_duty"}, format="json"
        )

    assign, off_duty = in_parallel(2, act)

    paramedic.refresh_from_db()
    task.refresh_from_db()
    if assign.status_code == 200:
        # Assigned first: going off duty by hand is refused while on the task.
        assert off_duty.status_code == 409
        assert paramedic.status == ParamedicStatus.ON_TASK
        assert task.paramedic_id == paramedic.pk
    else:
        assert assign.json()["code"] == "paramedic_unavailable"
        assert off_duty.status_code == 200
        assert paramedic.status == ParamedicStatus.OFF_DUTY
        assert task.status == TaskStatus.PENDING
