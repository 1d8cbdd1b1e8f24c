"""The task state machine (design §6). Every status change happens here.

Each transition runs in one transaction that locks the task row (then the
paramedic row: always in that order, so two transitions cannot deadlock),
checks the move is allowed, saves with update_fields, writes a history row,
and records the event for the other services (tasks.events).

The guarantee "a paramedic holds at most one active task" is held three times
over: the paramedic row is claimed with a conditional UPDATE (status must still
be `available`; paramedics.services.paramedic_claim, which owns a paramedic's
availability), the paramedic's status and current_task are tied by a check
constraint, and a partial unique index allows one active task per paramedic.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ApplicationError, Conflict, Duplicate, InvalidTransition, NotFound
from core.field_time import clock_skew, device_time_problem
from core.roles import is_supervisor
from paramedics.services import ParamedicUnavailable, paramedic_claim, paramedic_release

from .dispatch import rank_candidates
from .events import TaskEvent, record_task_event
from .models import (
    DEFAULT_CALL_TYPE,
    MILESTONES,
    CallType,
    EmergencyTask,
    Milestone,
    ReminderKind,
    TaskHistory,
    TaskPriority,
    TaskReminder,
    TaskStatus,
)
from .plans import DEFAULT_PLANS, plan_fields


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
# The status a task must be in to record each milestone; en_route is its start.
MILESTONE_STATUS = {
    Milestone.ACKNOWLEDGED: TaskStatus.ASSIGNED,
    Milestone.ON_SCENE: TaskStatus.IN_PROGRESS,
    Milestone.AT_PATIENT: TaskStatus.IN_PROGRESS,
    Milestone.TRANSPORTING: TaskStatus.IN_PROGRESS,
    Milestone.AT_DESTINATION: TaskStatus.IN_PROGRESS,
}


# Listeners other apps register at start-up (AppConfig.ready) for a recorded milestone:
# called in its transaction with the locked task, the milestone and its time. This is
# how hospitals marks a handoff arrived at `at_destination` (design §21) while tasks
# imports none of the apps that act on its milestones.
MilestoneListener = Callable[[EmergencyTask, Milestone, datetime], None]
_milestone_listeners: list[MilestoneListener] = []


def on_milestone(listener: MilestoneListener) -> None:
    if listener not in _milestone_listeners:
        _milestone_listeners.append(listener)


# The same for a status change: called in its transaction with the locked task (its
# new status set) and the status it left. hospitals ends a report whose task was
# called off (design §21).
StatusListener = Callable[[EmergencyTask, str], None]
_status_listeners: list[StatusListener] = []


def on_status_change(listener: StatusListener) -> None:
    if listener not in _status_listeners:
        _status_listeners.append(listener)


class InvalidTime(ApplicationError):
    code = "invalid_time"
    default_detail = "The time of the action is not acceptable."

    def __init__(self, detail: str):
        super().__init__(detail, errors={"at": [{"code": self.code, "message": detail}]})


class MilestoneRefused(Conflict):
    code = "invalid_milestone"
    default_detail = "This milestone cannot be recorded now."


@dataclass
class IntakeResult:
    task: EmergencyTask
    created: bool


def _write_history(
    task: EmergencyTask,
    *,
    from_status: str,
    actor,
    note: str = "",
    at=None,
    recorded_at=None,
    paramedic_id=None,
    milestone: str = "",
) -> TaskHistory:
    recorded_at = recorded_at or timezone.now()
    return TaskHistory.objects.create(
        task=task,
        from_status=from_status,
        to_status=task.status,
        actor=actor,
        # The paramedic concerned; for a decline, the one who declined.
        paramedic_id=paramedic_id or task.paramedic_id,
        at=at or recorded_at,
        recorded_at=recorded_at,
        milestone=milestone,
        note=note,
    )


def _device_time(
    at: datetime | None, *, now: datetime, task: EmergencyTask, not_before
) -> datetime:
    """When the action happened: the device's `at` within its bounds, or now.

    A device time is refused (400 `invalid_time`) outside the bounds of every
    device time (core.field_time: the clock skew ahead, DEVICE_TIME_BEHIND back),
    before the task's assignment to its paramedic less that skew (the
    server's time: nothing this crew did happened before it was sent), or
    before the task's previous milestone: field records keep their order.
    """
    if at is None:
        return now
    problem = device_time_problem(at, now=now)
    if problem:
        raise InvalidTime(problem)
    skew = clock_skew()
    if task.assigned_at is not None and at < task.assigned_at - skew:
        raise InvalidTime(
            f"The time lies before the task was assigned to this paramedic ({task.assigned_at})."
        )
    if not_before is not None and at < not_before:
        raise InvalidTime(f"The time lies before the task's previous milestone ({not_before}).")
    return at


def _latest_milestone(task: EmergencyTask, before: Milestone | None = None) -> datetime | None:
    """The latest time among the task's milestones (those before `before` only)."""
    milestones = MILESTONES[: MILESTONES.index(before)] if before else MILESTONES
    return max((getattr(task, m.field) for m in milestones if getattr(task, m.field)), default=None)


def _lock_task(task_id) -> EmergencyTask:
    try:
        # Its paramedic read along (the event names it), only the task row locked.
        return (
            EmergencyTask.objects.select_for_update(of=("self",))
            .select_related("paramedic")
            .get(pk=task_id)
        )
    except EmergencyTask.DoesNotExist:
        raise NotFound("Task not found.") from None


def _check_move(task: EmergencyTask, to_status: str, allowed: frozenset[str]) -> str:
    """The name of the move, if the state machine and the caller's endpoint allow it."""
    move = TRANSITIONS.get((task.status, to_status))
    if move is None or move not in allowed:
        raise InvalidTransition(f"A task cannot go from {task.status} to {to_status} here.")
    return move


def task_create(
    *,
    request_id: str,
    patient_id: str,
    lat: float,
    lon: float,
    created_by: AbstractBaseUser,
    priority: str | None = None,
    call_type: CallType | None = None,
    consultation_id: str = "",
    description: str = "",
    address: str = "",
) -> IntakeResult:
    """Receive an emergency request; the same request_id returns the same task.

    The call type's plan (default `other`) gives the priority when none is sent
    and the task's response target for its priority (design §18).
    Two identical requests racing each other meet at the unique index: the
    loser's INSERT fails, and it returns the winner's row instead.
    """
    existing = EmergencyTask.objects.filter(request_id=request_id).first()
    if existing is None:
        if call_type is None:
            call_type = default_call_type()
        priority = priority or call_type.default_priority
        try:
            with transaction.atomic():
                task = EmergencyTask.objects.create(
                    request_id=request_id,
                    patient_id=patient_id,
                    consultation_id=consultation_id,
                    priority=priority,
                    call_type=call_type,
                    target_minutes=call_type.target_minutes(priority),
                    description=description,
                    address=address,
                    lat=lat,
                    lon=lon,
                    created_by=created_by,
                )
                history = _write_history(
                    task,
                    from_status="",
                    actor=created_by,
                    note="received",
                    at=task.created_at,
                    recorded_at=task.created_at,
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


def default_call_type() -> CallType:
    """The plan of a task that names none. Seeded by tasks/0005_call_types; made again
    from tasks.plans should it be missing (a database flushed since, as transactional
    tests do), so intake never fails for want of it."""
    plan = next(plan for plan in DEFAULT_PLANS if plan["code"] == DEFAULT_CALL_TYPE)
    call_type, _ = CallType.objects.get_or_create(
        code=DEFAULT_CALL_TYPE, defaults=plan_fields(plan)
    )
    return call_type


def call_types_ensure_defaults() -> int:
    """Put back any seeded plan (tasks.plans) that is missing; existing plans, edited or
    not, are left alone. How many were made."""
    existing = set(CallType.objects.values_list("code", flat=True))
    missing = [
        CallType(code=plan["code"], **plan_fields(plan))
        for plan in DEFAULT_PLANS
        if plan["code"] not in existing
    ]
    CallType.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


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
    history = _write_history(
        task, from_status=from_status, actor=actor, note=note, at=now, recorded_at=now
    )
    record_task_event(task, TaskEvent.ASSIGNED, history)
    return task


def _claim_paramedic(task: EmergencyTask, paramedic_id) -> None:
    """The paramedic now holds this task (paramedics.services.paramedic_claim decides a
    race: 409 for the loser)."""
    paramedic_claim(paramedic_id=paramedic_id, task=task)
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


def _lock_own_task(task_id, paramedic_id) -> EmergencyTask:
    """Lock the task; with `paramedic_id` (the field endpoints), it must be that
    paramedic's task, else it is answered like an unknown one."""
    task = _lock_task(task_id)
    if paramedic_id is not None and task.paramedic_id != paramedic_id:
        raise NotFound("Task not found.")
    return task


@transaction.atomic
def task_change_status(
    *,
    task_id,
    to_status: str,
    actor: AbstractBaseUser,
    note: str = "",
    at: datetime | None = None,
    paramedic_id=None,
    allowed_moves: frozenset[str] = FIELD_MOVES,
) -> EmergencyTask:
    """Start, complete or decline a task (and cancel, through task_cancel).

    `at` is the device's time of the action (design §17); the status timestamps
    take it, the history keeps it beside the server's time. `paramedic_id`, when
    given, must be the task's paramedic: the field endpoint is scoped to one
    paramedic's tasks.
    """
    task = _lock_own_task(task_id, paramedic_id)
    return _change_status(
        task, to_status=to_status, actor=actor, note=note, at=at, allowed_moves=allowed_moves
    )


def _change_status(
    task: EmergencyTask,
    *,
    to_status: str,
    actor,
    note: str,
    at: datetime | None,
    allowed_moves: frozenset[str],
) -> EmergencyTask:
    """The move itself, on a locked task (task_change_status, and en_route)."""
    move = _check_move(task, to_status, allowed_moves)
    now = timezone.now()
    when = _device_time(at, now=now, task=task, not_before=_latest_milestone(task))

    from_status, previous_paramedic_id = task.status, task.paramedic_id
    if move in ("complete", "decline", "cancel") and from_status != TaskStatus.PENDING:
        paramedic_release(paramedic_id=task.paramedic_id, task=task)
    task.status = to_status
    update_fields = ["status", "updated_at"]
    if move == "decline":
        # Back to dispatch: the next paramedic's acknowledgement starts afresh.
        task.paramedic = None
        task.assigned_at = task.acknowledged_at = None
        update_fields += ["paramedic", "assigned_at", "acknowledged_at"]
    if move == "start":
        task.en_route_at = when  # starting is going en route (design §17)
        update_fields.append("en_route_at")
    if to_status in TIMESTAMP_FIELD:
        setattr(task, TIMESTAMP_FIELD[to_status], when)
        update_fields.append(TIMESTAMP_FIELD[to_status])
    task.save(update_fields=update_fields)
    history = _write_history(
        task,
        from_status=from_status,
        actor=actor,
        note=note,
        at=when,
        recorded_at=now,
        paramedic_id=previous_paramedic_id,
        milestone=Milestone.EN_ROUTE if move == "start" else "",
    )
    record_task_event(task, TaskEvent.STATUS_CHANGED, history)
    for listener in _status_listeners:
        listener(task, from_status)
    return task


@transaction.atomic
def task_record_milestone(
    *,
    task_id,
    milestone: str,
    actor: AbstractBaseUser,
    at: datetime | None = None,
    note: str = "",
    paramedic_id=None,
) -> EmergencyTask:
    """Record a field milestone (design §17): at most once, in order, at the device's time.

    `en_route` starts an assigned task (the same move as status `in_progress`);
    `acknowledged` belongs to an assigned task, the others to one in progress.
    A milestone already recorded, one after a later one, or one in the wrong
    state is 409 `invalid_milestone`; the paramedic stays `on_task` throughout.
    """
    task = _lock_own_task(task_id, paramedic_id)
    milestone = Milestone(milestone)
    if milestone == Milestone.EN_ROUTE and task.status == TaskStatus.ASSIGNED:
        return _change_status(
            task,
            to_status=TaskStatus.IN_PROGRESS,
            actor=actor,
            note=note,
            at=at,
            allowed_moves=frozenset({"start"}),
        )
    _check_milestone(task, milestone)
    now = timezone.now()
    when = _device_time(
        at, now=now, task=task, not_before=_latest_milestone(task, before=milestone)
    )
    setattr(task, milestone.field, when)
    task.save(update_fields=[milestone.field, "updated_at"])
    history = _write_history(
        task,
        from_status=task.status,
        actor=actor,
        note=note,
        at=when,
        recorded_at=now,
        milestone=milestone,
    )
    record_task_event(task, TaskEvent.MILESTONE, history)
    for listener in _milestone_listeners:
        listener(task, milestone, when)
    return task


def _check_milestone(task: EmergencyTask, milestone: Milestone) -> None:
    if getattr(task, milestone.field) is not None:
        raise MilestoneRefused(f"{milestone} is already recorded for this task.")
    required = MILESTONE_STATUS.get(milestone)
    if task.status != required:
        raise MilestoneRefused(
            f"{milestone} is recorded on a task that is {required or 'assigned'}; "
            f"this one is {task.status}."
        )
    later = [m for m in MILESTONES[MILESTONES.index(milestone) + 1 :] if getattr(task, m.field)]
    if later:
        raise MilestoneRefused(
            f"{later[0]} is already recorded: milestones are recorded in their order."
        )


def task_cancel(*, task_id, actor: AbstractBaseUser, reason: str) -> EmergencyTask:
    """Cancel any non-final task; frees its paramedic."""
    return task_change_status(
        task_id=task_id,
        to_status=TaskStatus.CANCELLED,
        actor=actor,
        note=reason,
        allowed_moves=frozenset({"cancel"}),
    )


@transaction.atomic
def task_reassign(*, task_id, actor: AbstractBaseUser, paramedic_id=None, note: str = ""):
    """Give an assigned task that has not started to another paramedic (or the top
    candidate): its paramedic is released (the decline move) and the task assigned
    again, in one transaction, so a refused assignment leaves it where it was."""
    task_change_status(
        task_id=task_id,
        to_status=TaskStatus.PENDING,
        actor=actor,
        note=note or "Taken back for reassignment",
        allowed_moves=frozenset({"decline"}),
    )
    return task_assign(task_id=task_id, actor=actor, paramedic_id=paramedic_id, note=note)


@transaction.atomic
def task_change_priority(*, task_id, actor: AbstractBaseUser, priority: str) -> EmergencyTask:
    """A supervisor re-triages an open task. Its target follows: the call type's plan
    for the new priority (design §18), as if it had arrived with it. A history row
    (status unchanged) keeps who changed what."""
    if priority not in TaskPriority.values:
        raise ApplicationError(f"Unknown priority {priority!r}.", code="invalid")
    task = _lock_task(task_id)
    if task.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
        raise InvalidTransition(f"The priority of a {task.status} task no longer changes.")
    previous = task.priority
    if previous == priority:
        return task
    task.priority = priority
    task.target_minutes = task.call_type.target_minutes(priority)
    task.save(update_fields=["priority", "target_minutes", "updated_at"])
    _write_history(
        task,
        from_status=task.status,
        actor=actor,
        note=f"Priority {previous} -> {priority} (target {task.target_minutes} min)",
    )
    return task


# Patient details are kept, but bounded: a runaway response must not bloat the row.
MAX_PATIENT_DETAILS_BYTES = 64 * 1024


class PatientDetailsRejected(ApplicationError):
    code = "patient_details_rejected"
    default_detail = "The patient details cannot be kept."


def task_store_patient_details(*, task_id, details: dict) -> None:
    """Keep the Patient Service's emergency details on the task (not its status)."""
    if len(json.dumps(details)) > MAX_PATIENT_DETAILS_BYTES:
        raise PatientDetailsRejected("details larger than 64 KB")
    now = timezone.now()
    EmergencyTask.objects.filter(pk=task_id).update(
        patient_details=details, patient_details_fetched_at=now, updated_at=now
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
