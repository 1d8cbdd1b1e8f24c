"""Field milestones and device times (design §17): in order, each once, when it happened."""

from datetime import timedelta
from itertools import product

import pytest
from django.utils import timezone

from integrations.models import OutboxEvent
from paramedics.models import ParamedicStatus
from tasks.models import MILESTONES, EmergencyTask, Milestone, TaskStatus
from tasks.services import (
    InvalidTime,
    MilestoneRefused,
    task_assign,
    task_change_status,
    task_record_milestone,
)
from tests.factories import TaskFactory, put_on_task
from tests.helpers import API, client_for

# The tasks here were received and assigned an hour ago: the crew's steps lie after that.
AN_HOUR = timedelta(hours=1)
LATER = (Milestone.ON_SCENE, Milestone.AT_PATIENT, Milestone.TRANSPORTING, Milestone.AT_DESTINATION)


def _started(paramedic, minutes_ago=30, task=None):
    """`task` (or a new task of `paramedic`) started `minutes_ago` by the device."""
    task = task or put_on_task(paramedic, assigned_ago=AN_HOUR)
    return task_change_status(
        task_id=task.pk,
        to_status=TaskStatus.IN_PROGRESS,
        actor=paramedic.user,
        at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _record(task, milestone, paramedic, minutes_ago=None):
    at = None if minutes_ago is None else timezone.now() - timedelta(minutes=minutes_ago)
    return task_record_milestone(task_id=task.pk, milestone=milestone, actor=paramedic.user, at=at)


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for a, b in product(LATER, LATER) if a != b],
    ids=lambda m: m.value,
)
def test_every_pair_of_milestones_in_progress_keeps_their_order(paramedic, first, second):
    """Table-driven: on a task in progress, `second` after `first` is accepted exactly
    when it comes later in the order; any may be skipped."""
    task = _started(paramedic)
    _record(task, first, paramedic, minutes_ago=20)
    if MILESTONES.index(second) > MILESTONES.index(first):
        task = _record(task, second, paramedic, minutes_ago=10)
        assert getattr(task, second.field) is not None
    else:
        with pytest.raises(MilestoneRefused, match="milestones are recorded in their order"):
            _record(task, second, paramedic, minutes_ago=10)
        task.refresh_from_db()
        assert getattr(task, second.field) is None


@pytest.mark.parametrize("milestone", list(Milestone), ids=lambda m: m.value)
def test_each_milestone_is_recorded_at_most_once(paramedic, milestone):
    task = put_on_task(paramedic, assigned_ago=AN_HOUR)
    if milestone in LATER:
        task = _started(paramedic, task=task)
    first = _record(task, milestone, paramedic, minutes_ago=5)
    recorded = getattr(first, milestone.field)
    with pytest.raises(MilestoneRefused, match="already recorded"):
        _record(first, milestone, paramedic, minutes_ago=1)
    first.refresh_from_db()
    assert getattr(first, milestone.field) == recorded


@pytest.mark.parametrize(
    ("status", "milestone", "allowed"),
    [
        (status, milestone, allowed)
        for milestone in Milestone
        for status, allowed in (
            (TaskStatus.PENDING, False),
            (TaskStatus.ASSIGNED, milestone in (Milestone.ACKNOWLEDGED, Milestone.EN_ROUTE)),
            (TaskStatus.IN_PROGRESS, milestone in LATER),
            (TaskStatus.COMPLETED, False),
            (TaskStatus.CANCELLED, False),
        )
    ],
    ids=str,
)
def test_milestones_belong_to_their_state(paramedic, supervisor, status, milestone, allowed):
    task = (
        TaskFactory()
        if status == TaskStatus.PENDING
        else put_on_task(paramedic, assigned_ago=AN_HOUR)
    )
    if status in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
        task = _started(paramedic, task=task)
    if status == TaskStatus.COMPLETED:
        task = task_change_status(
            task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=paramedic.user
        )
    if status == TaskStatus.CANCELLED:
        task = task_change_status(
            task_id=task.pk,
            to_status=TaskStatus.CANCELLED,
            actor=supervisor,
            allowed_moves=frozenset({"cancel"}),
        )
    if allowed:
        assert getattr(_record(task, milestone, paramedic), milestone.field) is not None
    else:
        with pytest.raises(MilestoneRefused):
            _record(task, milestone, paramedic)


def test_en_route_starts_the_task_and_the_paramedic_stays_on_task(paramedic):
    task = put_on_task(paramedic, assigned_ago=AN_HOUR)
    _record(task, Milestone.ACKNOWLEDGED, paramedic, minutes_ago=12)
    task = _record(task, Milestone.EN_ROUTE, paramedic, minutes_ago=10)
    assert task.status == TaskStatus.IN_PROGRESS
    assert task.en_route_at == task.started_at
    for minutes_ago, milestone in zip((6, 5, 3, 1), LATER, strict=True):
        task = _record(task, milestone, paramedic, minutes_ago=minutes_ago)
        paramedic.refresh_from_db()
        assert (paramedic.status, paramedic.current_task_id) == (ParamedicStatus.ON_TASK, task.pk)
    done = task_change_status(task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=paramedic.user)
    assert done.completed_at > done.at_destination_at


def test_starting_is_going_en_route(paramedic):
    task = _started(paramedic, minutes_ago=7)
    assert task.en_route_at == task.started_at
    row = task.history.order_by("recorded_at").last()
    assert (row.from_status, row.to_status, row.milestone) == (
        "assigned",
        "in_progress",
        "en_route",
    )


def test_history_keeps_the_device_time_and_the_server_time(paramedic):
    task = _started(paramedic, minutes_ago=20)
    device_time = timezone.now() - timedelta(minutes=8)
    task = task_record_milestone(
        task_id=task.pk, milestone="on_scene", actor=paramedic.user, at=device_time, note="gate 3"
    )
    row = task.history.get(milestone="on_scene")
    assert row.at == device_time == task.on_scene_at
    assert row.recorded_at > device_time + timedelta(minutes=7)
    assert (row.from_status, row.to_status, row.note) == ("in_progress", "in_progress", "gate 3")
    event = OutboxEvent.objects.filter(kind="task.milestone").get()
    assert event.payload["milestone"] == "on_scene"
    assert event.payload["at"] == device_time.isoformat()


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (timedelta(minutes=3), "more than 2 minutes in the future"),
        (timedelta(hours=-25), "more than 24 hours in the past"),
    ],
)
def test_device_times_out_of_bounds_are_refused(paramedic, offset, message):
    task = put_on_task(paramedic, assigned_ago=AN_HOUR)
    with pytest.raises(InvalidTime, match=message):
        task_record_milestone(
            task_id=task.pk,
            milestone="acknowledged",
            actor=paramedic.user,
            at=timezone.now() + offset,
        )
    with pytest.raises(InvalidTime, match=message):
        task_change_status(
            task_id=task.pk,
            to_status=TaskStatus.IN_PROGRESS,
            actor=paramedic.user,
            at=timezone.now() + offset,
        )
    task.refresh_from_db()
    assert (task.status, task.acknowledged_at) == (TaskStatus.ASSIGNED, None)


def test_a_time_before_the_previous_milestone_is_refused(paramedic):
    task = _started(paramedic, minutes_ago=30)
    _record(task, Milestone.ON_SCENE, paramedic, minutes_ago=10)
    with pytest.raises(InvalidTime, match="before the task's previous milestone"):
        _record(task, Milestone.AT_PATIENT, paramedic, minutes_ago=11)
    with pytest.raises(InvalidTime, match="before the task's previous milestone"):
        task_change_status(
            task_id=task.pk,
            to_status=TaskStatus.COMPLETED,
            actor=paramedic.user,
            at=timezone.now() - timedelta(minutes=15),
        )
    # Within two minutes ahead of the server is a device clock running a little fast.
    task = _record(task, Milestone.AT_PATIENT, paramedic, minutes_ago=-1.5)
    assert task.at_patient_at > timezone.now()


ALMOST_A_DAY = timedelta(hours=23, minutes=50)


@pytest.mark.parametrize(
    "step",
    [
        ("milestone", Milestone.ACKNOWLEDGED),
        ("milestone", Milestone.EN_ROUTE),
        ("status", TaskStatus.IN_PROGRESS),
        ("status", TaskStatus.PENDING),  # decline
        ("milestone", Milestone.ON_SCENE),
        ("status", TaskStatus.COMPLETED),
    ],
    ids=lambda s: f"{s[0]}-{s[1]}",
)
def test_no_step_of_a_crew_lies_before_its_assignment(paramedic, settings, step):
    """A task assigned just now: a device time 23 h 50 min ago (within the 24 h bound)
    is refused, for milestones and status changes alike; within the clock skew of the
    assignment it is a device clock running a little slow, and accepted."""
    settings.DEVICE_CLOCK_SKEW_SECONDS = 120
    kind, target = step
    task = put_on_task(paramedic)
    if target in (Milestone.ON_SCENE, TaskStatus.COMPLETED):
        task = task_change_status(
            task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=paramedic.user
        )

    def do(at):
        if kind == "milestone":
            return task_record_milestone(
                task_id=task.pk, milestone=target, actor=paramedic.user, at=at
            )
        return task_change_status(task_id=task.pk, to_status=target, actor=paramedic.user, at=at)

    for too_early in (timezone.now() - ALMOST_A_DAY, task.assigned_at - timedelta(seconds=121)):
        with pytest.raises(InvalidTime, match="before the task was assigned to this paramedic"):
            do(too_early)
    before = EmergencyTask.objects.get(pk=task.pk)
    assert (before.status, before.acknowledged_at, before.on_scene_at) == (
        task.status,
        None,
        None,
    )
    slow_clock = task.assigned_at - timedelta(seconds=90)
    if target in (Milestone.ON_SCENE, TaskStatus.COMPLETED):
        slow_clock = max(slow_clock, task.en_route_at)  # not before the previous milestone
    do(slow_clock)


def test_a_reassigned_task_is_bounded_by_its_assignment_to_this_paramedic(
    paramedic, other_paramedic
):
    task = put_on_task(paramedic, assigned_ago=AN_HOUR)
    task_change_status(task_id=task.pk, to_status=TaskStatus.PENDING, actor=paramedic.user)
    task = task_assign(task_id=task.pk, actor=task.created_by, paramedic_id=other_paramedic.pk)
    with pytest.raises(InvalidTime, match="before the task was assigned to this paramedic"):
        task_record_milestone(
            task_id=task.pk,
            milestone=Milestone.ACKNOWLEDGED,
            actor=other_paramedic.user,
            at=timezone.now() - timedelta(minutes=30),  # after the first paramedic's assignment
        )


def test_the_api_answers_a_step_before_the_assignment_400_invalid_time(paramedic_client, paramedic):
    task = put_on_task(paramedic)
    at = (timezone.now() - ALMOST_A_DAY).isoformat()
    task_url = f"{API}/paramedics/{paramedic.id}/tasks/{task.id}"
    for url, body in (
        (f"{task_url}/milestones", {"milestone": "acknowledged"}),
        (f"{task_url}/milestones", {"milestone": "en_route"}),
        (task_url, {"status": "in_progress"}),
    ):
        response = paramedic_client.post(url, {**body, "at": at}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_time")
        assert response.json()["errors"]["at"][0]["code"] == "invalid_time"
    task.refresh_from_db()
    assert (task.status, task.acknowledged_at, task.en_route_at) == (
        TaskStatus.ASSIGNED,
        None,
        None,
    )


def test_a_declined_task_is_acknowledged_afresh_by_the_next_paramedic(paramedic, other_paramedic):
    task = put_on_task(paramedic, assigned_ago=AN_HOUR)
    _record(task, Milestone.ACKNOWLEDGED, paramedic, minutes_ago=2)
    task_change_status(task_id=task.pk, to_status=TaskStatus.PENDING, actor=paramedic.user)
    task.refresh_from_db()
    assert task.acknowledged_at is None
    assert task.history.filter(milestone="acknowledged", paramedic=paramedic).exists()


class TestApi:
    def url(self, paramedic, task):
        return f"{API}/paramedics/{paramedic.id}/tasks/{task.id}/milestones"

    def test_a_milestone_answers_the_task_with_its_milestones(self, paramedic_client, paramedic):
        task = _started(paramedic, minutes_ago=20)
        at = (timezone.now() - timedelta(minutes=5)).isoformat()
        response = paramedic_client.post(
            self.url(paramedic, task), {"milestone": "on_scene", "at": at}, format="json"
        )
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["milestones"]["on_scene_at"].startswith(at[:19])
        assert data["milestones"]["at_patient_at"] is None
        (row,) = [h for h in data["history"] if h["milestone"] == "on_scene"]
        assert row["at"] != row["recorded_at"]

    def test_errors_have_their_codes(self, paramedic_client, paramedic):
        task = put_on_task(paramedic, assigned_ago=AN_HOUR)
        refused = paramedic_client.post(
            self.url(paramedic, task), {"milestone": "on_scene"}, format="json"
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "invalid_milestone")
        future = (timezone.now() + timedelta(minutes=10)).isoformat()
        late = paramedic_client.post(
            self.url(paramedic, task), {"milestone": "acknowledged", "at": future}, format="json"
        )
        assert (late.status_code, late.json()["code"]) == (400, "invalid_time")
        assert late.json()["errors"]["at"][0]["code"] == "invalid_time"
        unknown = paramedic_client.post(
            self.url(paramedic, task), {"milestone": "teleported"}, format="json"
        )
        assert unknown.status_code == 400
        assert EmergencyTask.objects.get(pk=task.pk).acknowledged_at is None

    def test_another_paramedics_task_is_404(self, paramedic, other_paramedic):
        theirs = put_on_task(other_paramedic)
        response = client_for(paramedic.user).post(
            self.url(paramedic, theirs), {"milestone": "acknowledged"}, format="json"
        )
        assert response.status_code == 404
        theirs.refresh_from_db()
        assert theirs.acknowledged_at is None

    def test_a_status_change_takes_the_device_time(self, paramedic_client, paramedic):
        task = put_on_task(paramedic, assigned_ago=AN_HOUR)
        at = timezone.now() - timedelta(minutes=3)
        response = paramedic_client.post(
            f"{API}/paramedics/{paramedic.id}/tasks/{task.id}",
            {"status": "in_progress", "at": at.isoformat()},
            format="json",
        )
        assert response.status_code == 200, response.content
        task.refresh_from_db()
        assert task.started_at == task.en_route_at == at
