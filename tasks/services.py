"""The task state machine (DESIGN §6). Every status change happens here.

Each transition runs in one transaction that locks the task row (then the
paramedic row: always in that order, so two transitions cannot deadlock),
checks the move is allowed, saves with update_fields, writes a history row,
and records the event for the other services (tasks.events).

The guarantee "a paramedic holds at most one active task" is held three times
over: the paramedic row is claimed with a conditional UPDATE (status must still
be `available`), the paramedic's status and current_task are tied by a check
constraint, and a partial unique index allows one active task per paramedic.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ApplicationError, Conflict, Duplicate, InvalidTransition, NotFound
from core.roles import is_supervisor
from paramedics.models import Paramedic, ParamedicStatus

from .dispatch import rank_candidates
from .events import TaskEvent, record_task_event
from .models import EmergencyTask, ReminderKind, TaskHistory, TaskReminder, TaskStatus


class ParamedicUnavailable(Conflict):
    code = "paramedic_unavailable"
    default_detail = "The paramedic is not available."


class NoCandidate(Conflict):
    code = "no_available_paramedic"
    default_detail = "No available paramedic with a known location."


# (from, to) -> the name of the move. Anything else is an invalid transition.
TRANSITIONS: dict[tuple[str, str], str] = {
    (TaskStatus.PENDING, TaskStatus.ASSIGNED): "assign",
    (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS): "start",
    (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED): "complete",
    (TaskStatus.ASSIGNED, TaskStatus.PENDING): "decline",
    (TaskStatus.PENDING, TaskStatus.CANCELLED): "cancel",
    (TaskStatus.ASSIGNED, TaskStatus.CANCELLED): "cancel",
    (TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED): "cancel",
}
# The moves a paramedic reports on its own task (POST /paramedics/{id}/tasks/{task_id}).
FIELD_MOVES = frozenset({"start", "complete", "decline"})
# The timestamp each target status sets.
TIMESTAMP_FIELD = {
    TaskStatus.ASSIGNED: "assigned_at",
    TaskStatus.IN_PROGRESS: "started_at",
    TaskStatus.COMPLETED: "completed_at",
    TaskStatus.CANCELLED: "cancelled_at",
}
# Attempts at the next candidate when auto-assign loses a race for the first.
AUTO_ASSIGN_ATTEMPTS = 5


@dataclass
class IntakeResult:
    task: EmergencyTask
    created: bool


def _write_history(
    task: EmergencyTask, *, from_status: str, actor, note: str = "", at=None, paramedic_id=None
) -> TaskHistory:
    return TaskHistory.objects.create(
        task=task,
        from_status=from_status,
        to_status=task.status,
        actor=actor,
        # The paramedic concerned; for a decline, the one who declined.
        paramedic_id=paramedic_id or task.paramedic_id,
        at=at or timezone.now(),
        note=note,
    )


def _lock_task(task_id) -> EmergencyTask:
    try:
        return EmergencyTask.objects.select_for_update().get(pk=task_id)
    except EmergencyTask.DoesNotExist:
        raise NotFound("Task not found.") from None


def _check_move(task: EmergencyTask, to_status: str, allowed: frozenset[str]) -> str:
    """The name of the move, if the state machine and the caller's endpoint allow it."""
    move = TRANSITIONS.get((task.status, to_status))
    if move is None or move not in allowed:
        raise InvalidTransition(f"A task cannot go from {task.status} to {to_status} here.")
    return move


def _release_paramedic(task: EmergencyTask) -> None:
    """The paramedic is free again (complete, decline, cancel)."""
    Paramedic.objects.filter(pk=task.paramedic_id, current_task=task).update(
        status=ParamedicStatus.AVAILABLE, current_task=None, updated_at=timezone.now()
    )


def task_create(
    *,
    request_id: str,
    patient_id: str,
    priority: str,
    lat: float,
    lon: float,
    created_by: AbstractBaseUser,
    consultation_id: str = "",
    description: str = "",
    address: str = "",
) -> IntakeResult:
    """Receive an emergency request; the same request_id returns the same task.

    Two identical requests racing each other meet at the unique index: the
    loser's INSERT fails, and it returns the winner's row instead.
    """
    existing = EmergencyTask.objects.filter(request_id=request_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                task = EmergencyTask.objects.create(
                    request_id=request_id,
                    patient_id=patient_id,
                    consultation_id=consultation_id,
                    priority=priority,
                    description=description,
                    address=address,
                    lat=lat,
                    lon=lon,
                    created_by=created_by,
                )
                history = _write_history(
                    task, from_status="", actor=created_by, note="received", at=task.created_at
                )
                record_task_event(task, TaskEvent.CREATED, history)
            return IntakeResult(task=task, created=True)
        except IntegrityError:
            existing = EmergencyTask.objects.filter(request_id=request_id).first()
            if existing is None:
                raise
    if existing.created_by_id != created_by.pk and not is_supervisor(created_by):
        # Another caller's request id: do not reveal its task.
        raise Duplicate("This request_id belongs to another caller.", code="duplicate_request_id")
    return IntakeResult(task=existing, created=False)


@transaction.atomic
def task_assign(
    *, task_id, actor: AbstractBaseUser, paramedic_id=None, note: str = ""
) -> EmergencyTask:
    """Assign a pending task to a paramedic, or to the top candidate when none is given."""
    task = _lock_task(task_id)
    _check_move(task, TaskStatus.ASSIGNED, frozenset({"assign"}))
    if paramedic_id is not None:
        _claim_paramedic(task, paramedic_id)
    else:
        _claim_top_candidate(task)

    from_status = task.status
    now = timezone.now()
    task.status = TaskStatus.ASSIGNED
    task.assigned_at = now
    try:
        with transaction.atomic():
            task.save(update_fields=["status", "paramedic", "assigned_at", "updated_at"])
    except IntegrityError as exc:  # the partial unique index: already holds a task
        raise ParamedicUnavailable() from exc
    history = _write_history(task, from_status=from_status, actor=actor, note=note, at=now)
    record_task_event(task, TaskEvent.ASSIGNED, history)
    return task


def _claim_paramedic(task: EmergencyTask, paramedic_id) -> None:
    """Flip the paramedic available -> on_task, or fail with 409.

    The UPDATE's WHERE clause is the arbiter: of two concurrent claims only one
    finds the row still `available` (PostgreSQL re-checks it after the first
    commits; SQLite serialises writers).
    """
    claimed = Paramedic.objects.filter(
        pk=paramedic_id, status=ParamedicStatus.AVAILABLE, current_task__isnull=True
    ).update(status=ParamedicStatus.ON_TASK, current_task=task, updated_at=timezone.now())
    if not claimed:
        if not Paramedic.objects.filter(pk=paramedic_id).exists():
            raise ParamedicUnavailable("No such paramedic.", code="paramedic_not_found")
        raise ParamedicUnavailable()
    task.paramedic_id = paramedic_id


def _claim_top_candidate(task: EmergencyTask) -> None:
    for candidate in rank_candidates(task, limit=AUTO_ASSIGN_ATTEMPTS):
        try:
            with transaction.atomic():
                _claim_paramedic(task, candidate.paramedic.pk)
            return
        except ParamedicUnavailable:
            continue  # taken since we ranked; try the next one
    raise NoCandidate()


@transaction.atomic
def task_change_status(
    *,
    task_id,
    to_status: str,
    actor: AbstractBaseUser,
    note: str = "",
    paramedic_id=None,
    allowed_moves: frozenset[str] = FIELD_MOVES,
) -> EmergencyTask:
    """Start, complete or decline a task (and cancel, through task_cancel).

    `paramedic_id`, when given, must be the task's paramedic: the field
    endpoint is scoped to one paramedic's tasks.
    """
    task = _lock_task(task_id)
    if paramedic_id is not None and task.paramedic_id != paramedic_id:
        raise NotFound("Task not found.")
    move = _check_move(task, to_status, allowed_moves)

    from_status, previous_paramedic_id = task.status, task.paramedic_id
    now = timezone.now()
    if move in ("complete", "decline", "cancel") and from_status != TaskStatus.PENDING:
        _release_paramedic(task)
    task.status = to_status
    update_fields = ["status", "updated_at"]
    if move == "decline":
        task.paramedic = None
        task.assigned_at = None
        update_fields += ["paramedic", "assigned_at"]
    if to_status in TIMESTAMP_FIELD:
        setattr(task, TIMESTAMP_FIELD[to_status], now)
        update_fields.append(TIMESTAMP_FIELD[to_status])
    task.save(update_fields=update_fields)
    history = _write_history(
        task,
        from_status=from_status,
        actor=actor,
        note=note,
        at=now,
        paramedic_id=previous_paramedic_id,
    )
    record_task_event(task, TaskEvent.STATUS_CHANGED, history)
    return task


def task_cancel(*, task_id, actor: AbstractBaseUser, reason: str) -> EmergencyTask:
    """Cancel any non-final task; frees its paramedic."""
    return task_change_status(
        task_id=task_id,
        to_status=TaskStatus.CANCELLED,
        actor=actor,
        note=reason,
        allowed_moves=frozenset({"cancel"}),
    )


# Patient details are kept, but bounded: a runaway response must not bloat the row.
MAX_PATIENT_DETAILS_BYTES = 64 * 1024


class PatientDetailsRejected(ApplicationError):
    code = "patient_details_rejected"
    default_detail = "The patient details cannot be kept."


def task_store_patient_details(*, task_id, details: dict) -> None:
    """Keep the Patient Service's emergency details on the task (not its status)."""
    if len(json.dumps(details)) > MAX_PATIENT_DETAILS_BYTES:
        raise PatientDetailsRejected("details larger than 64 KB")
    EmergencyTask.objects.filter(pk=task_id).update(
        patient_details=details, patient_details_fetched_at=timezone.now()
    )


def task_send_due_reminders(*, now=None) -> int:
    """Remind once per threshold: assigned but not started, or pending too long.

    A TaskReminder row (unique per task, kind and the moment its clock started)
    is written with the outbox event, so a reminder is sent once, not once per beat.
    """
    now = now or timezone.now()
    due = [
        (
            ReminderKind.NOT_STARTED,
            "assigned_at",
            EmergencyTask.objects.filter(
                status=TaskStatus.ASSIGNED,
                assigned_at__lte=now - timedelta(minutes=settings.TASK_START_REMINDER_MINUTES),
            ),
        ),
        (
            ReminderKind.UNASSIGNED,
            "created_at",
            EmergencyTask.objects.filter(
                status=TaskStatus.PENDING,
                created_at__lte=now - timedelta(minutes=settings.TASK_UNASSIGNED_ALERT_MINUTES),
            ),
        ),
    ]
    sent = 0
    for kind, clock_field, candidates in due:
        for task in candidates.select_related("paramedic").exclude(
            reminders__kind=kind, reminders__reference_at=F(clock_field)
        )[:500]:
            try:
                with transaction.atomic():
                    TaskReminder.objects.create(
                        task=task, kind=kind, reference_at=getattr(task, clock_field)
                    )
                    record_task_event(task, TaskEvent.REMINDER, None, reminder=kind)
                sent += 1
            except IntegrityError:
                continue  # another beat (or worker) sent this one already
    return sent
