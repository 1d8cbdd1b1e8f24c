"""A handoff's life (design §21). Every change to a handoff happens here.

    sent -> acknowledged (the hospital) -> arrived (the crew's `at_destination`
    milestone) -> offloaded (the patient handed over; the task completes and the
    crew is free)
    sent | acknowledged | arrived -> cancelled (the crew) ; sent | acknowledged ->
    redirected (a new report to another hospital replaces it)

A task has at most one active handoff (a partial unique index). Lock order is the
task's: the task row first, then the handoff, as the milestone listener (called by
tasks.services with the task locked) takes them, so no two changes deadlock.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError, Conflict, InvalidTransition, NotFound
from integrations.routing import travel_seconds
from tasks.models import EmergencyTask, Milestone, TaskPriority, TaskStatus
from tasks.services import task_change_status

from .events import HandoffEvent, record_handoff_event
from .models import ACTIVE_HANDOFF_STATES, Handoff, HandoffState, Hospital, HospitalStatus


class HospitalOnDiversion(Conflict):
    code = "hospital_on_diversion"
    default_detail = "The hospital is on diversion; confirm to go there anyway."


def _unknown_hospital() -> ApplicationError:
    message = "No hospital has this id."
    return ApplicationError(
        message,
        code="invalid",
        errors={"hospital": [{"code": "unknown_hospital", "message": message}]},
    )


def _lock_task(task_id, paramedic_id) -> EmergencyTask:
    task = EmergencyTask.objects.select_for_update().filter(pk=task_id).first()
    if task is None or task.paramedic_id != paramedic_id:
        raise NotFound("Task not found.")
    return task


def _eta(task: EmergencyTask, hospital: Hospital, now: datetime) -> datetime:
    """From the scene, as GET /tasks/{id}/destinations times it (design §18)."""
    travel = travel_seconds(
        [(hospital.lat, hospital.lon)],
        (task.lat, task.lon),
        emergency=task.priority == TaskPriority.CRITICAL,
    )[0]
    return now + timedelta(seconds=travel.seconds)


@transaction.atomic
def handoff_send(
    *,
    task_id,
    paramedic_id,
    hospital_id,
    report: dict,
    eta: datetime | None = None,
    confirm_diversion: bool = False,
) -> Handoff:
    """The crew's pre-arrival report for its task in progress. A report while another
    one is active (not yet arrived) redirects: the earlier becomes `redirected`."""
    task = _lock_task(task_id, paramedic_id)
    if task.status != TaskStatus.IN_PROGRESS:
        raise InvalidTransition(
            f"A report is sent for a task in progress; this one is {task.status}."
        )
    hospital = Hospital.objects.filter(pk=hospital_id).first()
    if hospital is None:
        raise _unknown_hospital()
    if hospital.status == HospitalStatus.DIVERSION and not confirm_diversion:
        reason = f" ({hospital.diversion_reason})" if hospital.diversion_reason else ""
        raise HospitalOnDiversion(f"{hospital.name} is on diversion{reason}.")
    now = timezone.now()
    current = (
        Handoff.objects.select_for_update()
        .filter(task=task, state__in=ACTIVE_HANDOFF_STATES)
        .first()
    )
    if current is not None:
        if current.state == HandoffState.ARRIVED:
            raise InvalidTransition("The crew has arrived with this patient: offload or cancel.")
        current.state, current.ended_at = HandoffState.REDIRECTED, now
        current.save(update_fields=["state", "ended_at", "updated_at"])
    handoff = Handoff.objects.create(
        task=task,
        hospital=hospital,
        paramedic_id=paramedic_id,
        eta=eta or _eta(task, hospital, now),
        diversion_confirmed=hospital.status == HospitalStatus.DIVERSION,
        **report,
    )
    record_handoff_event(handoff, HandoffEvent.SENT)
    return handoff


def _lock_handoff(handoff_id) -> Handoff:
    """The handoff, locked after its task (the lock order of the module docstring)."""
    task_id = Handoff.objects.filter(pk=handoff_id).values_list("task_id", flat=True).first()
    if task_id is None:
        raise NotFound("Handoff not found.")
    list(EmergencyTask.objects.select_for_update().filter(pk=task_id).values_list("pk"))
    return Handoff.objects.select_for_update().select_related("hospital").get(pk=handoff_id)


def _check(handoff: Handoff, *allowed: str) -> None:
    if handoff.state not in allowed:
        raise InvalidTransition(f"This handoff is {handoff.state}.")


@transaction.atomic
def handoff_acknowledge(*, handoff_id, actor) -> Handoff:
    """The hospital has read the report."""
    handoff = _lock_handoff(handoff_id)
    _check(handoff, HandoffState.SENT)
    handoff.state, handoff.acknowledged_at = HandoffState.ACKNOWLEDGED, timezone.now()
    handoff.acknowledged_by = actor
    handoff.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "updated_at"])
    record_handoff_event(handoff, HandoffEvent.ACKNOWLEDGED)
    return handoff


def handoff_arrive_on_milestone(task: EmergencyTask, milestone: Milestone, at: datetime) -> None:
    """The crew recorded `at_destination` (tasks.services calls this in the milestone's
    transaction, the task locked): its active report, if any, has arrived."""
    if milestone != Milestone.AT_DESTINATION:
        return
    handoff = (
        Handoff.objects.select_for_update()
        .select_related("hospital")
        .filter(task=task, state__in=(HandoffState.SENT, HandoffState.ACKNOWLEDGED))
        .first()
    )
    if handoff is None:
        return
    handoff.state, handoff.arrived_at = HandoffState.ARRIVED, at
    handoff.save(update_fields=["state", "arrived_at", "updated_at"])
    record_handoff_event(handoff, HandoffEvent.ARRIVED)


def handoff_end_on_task_cancelled(task: EmergencyTask, from_status: str) -> None:
    """The task was called off (tasks.services calls this in the change's transaction,
    the task locked): its active report ends, so the hospital does not wait for a
    patient who is not coming."""
    if task.status != TaskStatus.CANCELLED:
        return
    now = timezone.now()
    Handoff.objects.filter(task=task, state__in=ACTIVE_HANDOFF_STATES).update(
        state=HandoffState.CANCELLED, ended_at=now, updated_at=now
    )


@transaction.atomic
def handoff_offload(*, handoff_id, actor) -> Handoff:
    """The patient is handed over: the task completes and its crew is free."""
    handoff = _lock_handoff(handoff_id)
    _check(handoff, HandoffState.ARRIVED)
    now = timezone.now()
    if handoff.task.status == TaskStatus.IN_PROGRESS:
        task_change_status(
            task_id=handoff.task_id,
            to_status=TaskStatus.COMPLETED,
            actor=actor,
            note="patient offloaded at " + handoff.hospital.code,
            allowed_moves=frozenset({"complete"}),
        )
    handoff.state, handoff.offloaded_at = HandoffState.OFFLOADED, now
    handoff.save(update_fields=["state", "offloaded_at", "updated_at"])
    record_handoff_event(handoff, HandoffEvent.OFFLOADED)
    return handoff


@transaction.atomic
def handoff_cancel(*, handoff_id) -> Handoff:
    """The crew takes the patient nowhere after all (or the report was a mistake)."""
    handoff = _lock_handoff(handoff_id)
    _check(handoff, *ACTIVE_HANDOFF_STATES)
    handoff.state, handoff.ended_at = HandoffState.CANCELLED, timezone.now()
    handoff.save(update_fields=["state", "ended_at", "updated_at"])
    return handoff
