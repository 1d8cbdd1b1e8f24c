"""Every legal and illegal move of the task state machine (design §6)."""

import pytest

from core.errors import InvalidTransition
from paramedics.models import ParamedicStatus
from paramedics.services import ParamedicUnavailable
from tasks.models import EmergencyTask, TaskHistory, TaskStatus
from tasks.services import (
    FIELD_MOVES,
    TRANSITIONS,
    task_assign,
    task_cancel,
    task_change_status,
)
from tests.factories import ParamedicFactory, TaskFactory

ALL = list(TaskStatus)


def task_in(status: str, paramedic) -> EmergencyTask:
    """Drive a fresh task to `status` through the services, as production would."""
    task = TaskFactory()
    actor = task.created_by
    if status == TaskStatus.PENDING:
        return task
    if status == TaskStatus.CANCELLED:
        return task_cancel(task_id=task.pk, actor=actor, reason="setup")
    task = task_assign(task_id=task.pk, actor=actor, paramedic_id=paramedic.pk)
    if status in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
        task = task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=actor)
    if status == TaskStatus.COMPLETED:
        task = task_change_status(task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=actor)
    return task


def attempt(task: EmergencyTask, to_status: str, paramedic) -> EmergencyTask:
    """The one service each target status is reached through."""
    actor = task.created_by
    if to_status == TaskStatus.ASSIGNED:
        return task_assign(task_id=task.pk, actor=actor, paramedic_id=paramedic.pk)
    if to_status == TaskStatus.CANCELLED:
        return task_cancel(task_id=task.pk, actor=actor, reason="test")
    return task_change_status(task_id=task.pk, to_status=to_status, actor=actor, note="test")


# Expected paramedic status after the move, for moves that involve one.
EXPECTED_PARAMEDIC = {
    (TaskStatus.PENDING, TaskStatus.ASSIGNED): ParamedicStatus.ON_TASK,
    (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS): ParamedicStatus.ON_TASK,
    (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED): ParamedicStatus.AVAILABLE,
    (TaskStatus.ASSIGNED, TaskStatus.PENDING): ParamedicStatus.AVAILABLE,
    (TaskStatus.ASSIGNED, TaskStatus.CANCELLED): ParamedicStatus.AVAILABLE,
    (TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED): ParamedicStatus.AVAILABLE,
    (TaskStatus.PENDING, TaskStatus.CANCELLED): ParamedicStatus.AVAILABLE,
}
TIMESTAMP = {
    TaskStatus.ASSIGNED: "assigned_at",
    TaskStatus.IN_PROGRESS: "started_at",
    TaskStatus.COMPLETED: "completed_at",
    TaskStatus.CANCELLED: "cancelled_at",
}


def test_the_table_matches_the_design():
    assert set(TRANSITIONS) == set(EXPECTED_PARAMEDIC)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [(a, b) for a in ALL for b in ALL if a != b],
    ids=lambda s: str(s),
)
def test_it_allows_exactly_the_designed_moves(db, from_status, to_status):
    paramedic = ParamedicFactory(status=ParamedicStatus.AVAILABLE)
    task = task_in(from_status, paramedic)
    history_before = TaskHistory.objects.filter(task=task).count()

    if (from_status, to_status) not in TRANSITIONS:
        before = EmergencyTask.objects.values().get(pk=task.pk)
        paramedic_before = type(paramedic).objects.values().get(pk=paramedic.pk)
        with pytest.raises(InvalidTransition) as excinfo:
            attempt(task, to_status, paramedic)
        assert excinfo.value.code == "invalid_transition"
        assert excinfo.value.status_code == 409
        # Nothing changed: task, paramedic, history.
        assert EmergencyTask.objects.values().get(pk=task.pk) == before
        assert type(paramedic).objects.values().get(pk=paramedic.pk) == paramedic_before
        assert TaskHistory.objects.filter(task=task).count() == history_before
        return

    moved = attempt(task, to_status, paramedic)
    moved.refresh_from_db()
    paramedic.refresh_from_db()
    assert moved.status == to_status
    assert paramedic.status == EXPECTED_PARAMEDIC[(from_status, to_status)]
    if paramedic.status == ParamedicStatus.ON_TASK:
        assert paramedic.current_task_id == moved.pk
        assert moved.paramedic_id == paramedic.pk
    else:
        assert paramedic.current_task_id is None
    if to_status in TIMESTAMP:
        assert getattr(moved, TIMESTAMP[to_status]) is not None
    if to_status == TaskStatus.PENDING:  # declined: back to dispatch
        assert moved.paramedic_id is None
        assert moved.assigned_at is None
    last = TaskHistory.objects.filter(task=task).order_by("id").last()
    assert TaskHistory.objects.filter(task=task).count() == history_before + 1
    assert (last.from_status, last.to_status) == (from_status, to_status)
    assert last.actor_id == task.created_by_id
    if from_status != TaskStatus.PENDING:
        assert last.paramedic_id == paramedic.pk  # even after a decline


@pytest.mark.parametrize("status", [ParamedicStatus.OFF_DUTY, ParamedicStatus.ON_TASK])
def test_it_refuses_to_assign_an_unavailable_paramedic(db, status):
    paramedic = ParamedicFactory(status=ParamedicStatus.AVAILABLE)
    if status == ParamedicStatus.ON_TASK:
        task_in(TaskStatus.ASSIGNED, paramedic)
    else:
        paramedic.status = status
        paramedic.save()
    task = TaskFactory()
    with pytest.raises(ParamedicUnavailable) as excinfo:
        task_assign(task_id=task.pk, actor=task.created_by, paramedic_id=paramedic.pk)
    assert excinfo.value.code == "paramedic_unavailable"
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING
    assert not TaskHistory.objects.filter(task=task, to_status=TaskStatus.ASSIGNED).exists()


def test_field_moves_are_start_complete_decline():
    assert {"start", "complete", "decline"} == FIELD_MOVES


def test_the_field_endpoint_cannot_cancel_or_assign(db):
    paramedic = ParamedicFactory()
    task = task_in(TaskStatus.ASSIGNED, paramedic)
    for to_status in (TaskStatus.CANCELLED, TaskStatus.ASSIGNED):
        with pytest.raises(InvalidTransition):
            task_change_status(
                task_id=task.pk,
                to_status=to_status,
                actor=paramedic.user,
                paramedic_id=paramedic.pk,
            )


def test_a_declined_task_can_be_assigned_again(db):
    first, second = ParamedicFactory(), ParamedicFactory()
    task = task_in(TaskStatus.ASSIGNED, first)
    task_change_status(task_id=task.pk, to_status=TaskStatus.PENDING, actor=first.user)
    task = task_assign(task_id=task.pk, actor=task.created_by, paramedic_id=second.pk)
    assert task.paramedic_id == second.pk
    statuses = list(TaskHistory.objects.filter(task=task).values_list("to_status", flat=True))
    assert statuses == ["pending", "assigned", "pending", "assigned"]


def test_the_database_refuses_a_second_active_task_even_bypassing_code(db):
    from django.db import IntegrityError, transaction

    paramedic = ParamedicFactory()
    task_in(TaskStatus.ASSIGNED, paramedic)
    other = TaskFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        EmergencyTask.objects.filter(pk=other.pk).update(
            status=TaskStatus.ASSIGNED, paramedic=paramedic
        )


def test_the_database_ties_on_task_to_a_current_task(db):
    from django.db import IntegrityError, transaction

    paramedic = ParamedicFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(paramedic).objects.filter(pk=paramedic.pk).update(status=ParamedicStatus.ON_TASK)
