"""Which tasks a caller may see (design §4). Views scope every query through here."""

import math
from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import TruncHour

from core.roles import is_service, is_supervisor, paramedic_of

from .models import MILESTONES, EmergencyTask, TaskHistory, TaskPriority, TaskStatus


def tasks_visible_to(user) -> QuerySet[EmergencyTask]:
    """Supervisors: all; services: the tasks they created; paramedics: assigned to them."""
    tasks = EmergencyTask.objects.all()
    if is_supervisor(user):
        return tasks
    if is_service(user):
        return tasks.filter(created_by=user)
    me = paramedic_of(user)
    if me is not None:
        return tasks.filter(paramedic=me)
    return tasks.none()


def tasks_removed_from(paramedic, since) -> list:
    """Ids of tasks that left the paramedic's list at or after `since` (design §17).

    Declined, reassigned, or cancelled after it let go: a history row about this
    paramedic recorded since then, on a task that is no longer its own. A device
    back from a dead zone drops them.
    """
    return list(
        TaskHistory.objects.filter(paramedic=paramedic, recorded_at__gte=since)
        .exclude(task__paramedic=paramedic)
        .order_by("task_id")
        .values_list("task_id", flat=True)
        .distinct()
    )


def _history() -> Prefetch:
    return Prefetch("history", queryset=TaskHistory.objects.select_related("actor"))


def with_history(tasks: QuerySet[EmergencyTask]) -> QuerySet[EmergencyTask]:
    return tasks.prefetch_related(_history())


def load_history(task: EmergencyTask) -> EmergencyTask:
    """The history of a task already in hand (one query; the row is not read again)."""
    task._prefetched_objects_cache = {}  # a fresh read even if prefetched earlier
    prefetch_related_objects([task], _history())
    return task


def may_see_patient_details(user, task: EmergencyTask) -> bool:
    """Only supervisors and the paramedic assigned to the task (design §8)."""
    if is_supervisor(user):
        return True
    me = paramedic_of(user)
    return me is not None and task.paramedic_id == me.pk


# --- Dispatch overview (admin) -------------------------------------------------

PRIORITY_ORDER = {TaskPriority.CRITICAL: 0, TaskPriority.URGENT: 1, TaskPriority.ROUTINE: 2}
# (label, start field, end field) of each response interval (design §17). The
# milestones are the device's times; created_at and assigned_at the server's.
RESPONSE_INTERVALS = (
    ("Call to assignment", "created_at", "assigned_at"),
    ("Assigned to en route", "assigned_at", "en_route_at"),
    ("Assigned to on scene", "assigned_at", "on_scene_at"),
    ("On scene", "on_scene_at", "transporting_at"),
    ("Transport", "transporting_at", "at_destination_at"),
    ("Call to on scene (response time)", "created_at", "on_scene_at"),
)
ZERO = timedelta(0)
# The response time RESPONSE_TARGET_MINUTES is measured on: the patient's wait,
# from the call (task received) to the crew on scene.
RESPONSE_TIME = ("created_at", "on_scene_at")


def active_board() -> dict[str, list[EmergencyTask]]:
    """Active tasks by status, most urgent and longest waiting first (one query)."""
    columns = {TaskStatus.PENDING: [], TaskStatus.ASSIGNED: [], TaskStatus.IN_PROGRESS: []}
    priority_rank = Case(
        *(When(priority=p, then=Value(rank)) for p, rank in PRIORITY_ORDER.items()),
        output_field=IntegerField(),
    )
    tasks = (
        EmergencyTask.objects.filter(status__in=list(columns))
        .select_related("paramedic", "call_type")
        .annotate(priority_rank=priority_rank)
        .order_by("priority_rank", "created_at")
    )
    for task in tasks:
        columns[task.status].append(task)
    return columns


def interval(begin: str, finish: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(finish) - F(begin), output_field=DurationField())


def percentiles(queryset, expression, fractions: tuple[float, ...]) -> tuple[int, int, list]:
    """How many values, how many negative ones were dropped, and the nearest-rank
    percentiles of `expression` among the others, sorted and picked by the database.

    An interval that ends before it begins mixes a device's clock with the
    server's (or is older data than the bound on device times): it is no
    measurement, so it is counted apart, never as a fast response.
    Portable (SQLite and PostgreSQL): one COUNT, then one ORDER BY ... OFFSET row
    per percentile (none when there are no values).
    """
    values = queryset.annotate(_value=expression).exclude(_value__isnull=True)
    counts = values.aggregate(
        count=Count("pk", filter=Q(_value__gte=ZERO)),
        dropped=Count("pk", filter=Q(_value__lt=ZERO)),
    )
    count, dropped = counts["count"], counts["dropped"]
    if count == 0:
        return 0, dropped, [None for _ in fractions]
    ordered = values.filter(_value__gte=ZERO).order_by("_value").values_list("_value", flat=True)
    # Nearest rank: the ceil(f * n)-th smallest value.
    picks = [max(0, min(count - 1, math.ceil(f * count) - 1)) for f in fractions]
    return count, dropped, [ordered[index] for index in picks]


def response_times(start, end) -> list[dict]:
    """Median and 90th percentile of each response interval for tasks created in [start, end),
    and how many negative intervals were left out (`dropped`)."""
    period = EmergencyTask.objects.filter(created_at__gte=start, created_at__lt=end)
    figures = []
    for label, begin, finish in RESPONSE_INTERVALS:
        scoped = period.filter(**{f"{begin}__isnull": False, f"{finish}__isnull": False})
        count, dropped, (median, p90) = percentiles(scoped, interval(begin, finish), (0.5, 0.9))
        figures.append(
            {"label": label, "count": count, "dropped": dropped, "median": median, "p90": p90}
        )
    return figures


def response_targets(start, end, target: timedelta) -> list[dict]:
    """Per priority: tasks received in [start, end) that reached the scene, and the share
    of them whose response time (call to on scene) met `target` (one query). A negative
    response time is not counted, only reported (`dropped`)."""
    begin, finish = RESPONSE_TIME
    rows = (
        EmergencyTask.objects.filter(
            created_at__gte=start, created_at__lt=end, **{f"{finish}__isnull": False}
        )
        .annotate(response=interval(begin, finish))
        .values("priority")
        .annotate(
            total=Count("id", filter=Q(response__gte=ZERO)),
            met=Count("id", filter=Q(response__gte=ZERO, response__lte=target)),
            dropped=Count("id", filter=Q(response__lt=ZERO)),
        )
        .order_by()
    )
    by_priority = {row["priority"]: row for row in rows}
    figures = []
    for priority in sorted(TaskPriority.values, key=PRIORITY_ORDER.get):
        row = by_priority.get(priority, {"total": 0, "met": 0, "dropped": 0})
        share = row["met"] / row["total"] if row["total"] else None
        figures.append(
            {
                "priority": priority,
                "total": row["total"],
                "met": row["met"],
                "dropped": row["dropped"],
                "share": share,
            }
        )
    return figures


def plan_targets(start, end) -> list[dict]:
    """Per call type: tasks received in [start, end) that reached the scene, and the share
    whose response time (call to on scene) met the target their plan gave them (design
    §18). Negative response times are reported (`dropped`), never counted.

    Each task has its own `target_minutes`; comparing an interval with a column of
    minutes is not portable (SQLite has no interval type), so the few distinct targets
    are read first and each becomes one condition: two queries.
    """
    begin, finish = RESPONSE_TIME
    reached = EmergencyTask.objects.filter(
        created_at__gte=start, created_at__lt=end, **{f"{finish}__isnull": False}
    )
    targets = set(reached.values_list("target_minutes", flat=True).distinct().order_by())
    within = Q(pk__in=[])
    for minutes in targets:
        within |= Q(target_minutes=minutes, response__lte=timedelta(minutes=minutes))
    rows = (
        reached.annotate(response=interval(begin, finish))
        .values("call_type", "call_type__label")
        .annotate(
            total=Count("id", filter=Q(response__gte=ZERO)),
            met=Count("id", filter=Q(response__gte=ZERO) & within),
            dropped=Count("id", filter=Q(response__lt=ZERO)),
        )
        .order_by("call_type__label")
    )
    return [
        {
            "call_type": row["call_type"],
            "label": row["call_type__label"],
            "total": row["total"],
            "met": row["met"],
            "dropped": row["dropped"],
            "share": row["met"] / row["total"] if row["total"] else None,
        }
        for row in rows
    ]


def status_counts() -> dict[str, int]:
    counts = dict(EmergencyTask.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in TaskStatus.values}


def tasks_per_hour(start, end) -> list[tuple]:
    """(hour, count) of tasks created in the period, grouped by the database."""
    return list(
        EmergencyTask.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(hour=TruncHour("created_at"))
        .values_list("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
    )


# --- The incident page (admin, design §19) -------------------------------------

# (label, field) of each step of a task's life shown on its timeline, in order.
TIMELINE_STEPS = (
    ("Received", "created_at"),
    ("Assigned", "assigned_at"),
    *((m.label, m.field) for m in MILESTONES),
    ("Completed", "completed_at"),
    ("Cancelled", "cancelled_at"),
)


def incident_timeline(task: EmergencyTask, *, now) -> dict:
    """The steps a task has been through, each with the time since the previous step
    and since the call, and the response target: due at, and met (crew on scene by
    then), missed, or still open (no query: the times are the task's own fields)."""
    steps = []
    previous = None
    for label, field in TIMELINE_STEPS:
        at = getattr(task, field)
        if at is None:
            continue
        steps.append(
            {
                "label": label,
                "field": field,
                "at": at,
                "since_previous": at - previous if previous else None,
                "since_call": at - task.created_at,
            }
        )
        previous = at
    due = task.created_at + timedelta(minutes=task.target_minutes)
    if task.on_scene_at is not None:
        state = "met" if task.on_scene_at <= due else "missed"
    elif task.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
        state = "closed"
    else:
        state = "missed" if now > due else "open"
    return {
        "steps": steps,
        "target_due": due,
        "target_state": state,
        "age": now - task.created_at,
        "since_last_step": now - previous if previous else None,
    }
