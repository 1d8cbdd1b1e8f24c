"""Which tasks a caller may see (DESIGN §4). Views scope every query through here."""

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Prefetch,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncHour

from core.roles import is_service, is_supervisor, paramedic_of

from .models import EmergencyTask, TaskHistory, TaskPriority, TaskStatus


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
    """Ids of tasks that left the paramedic's list at or after `since` (DESIGN §17).

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


def with_history(tasks: QuerySet[EmergencyTask]) -> QuerySet[EmergencyTask]:
    return tasks.prefetch_related(
        Prefetch("history", queryset=TaskHistory.objects.select_related("actor"))
    )


def may_see_patient_details(user, task: EmergencyTask) -> bool:
    """Only supervisors and the paramedic assigned to the task (DESIGN §8)."""
    if is_supervisor(user):
        return True
    me = paramedic_of(user)
    return me is not None and task.paramedic_id == me.pk


# --- Dispatch overview (admin) -------------------------------------------------

PRIORITY_ORDER = {TaskPriority.CRITICAL: 0, TaskPriority.URGENT: 1, TaskPriority.ROUTINE: 2}
# (label, start field, end field) of each response-time figure.
RESPONSE_INTERVALS = (
    ("Time to assign", "created_at", "assigned_at"),
    ("Time to start", "assigned_at", "started_at"),
    ("Time to complete", "started_at", "completed_at"),
)


def active_board() -> dict[str, list[EmergencyTask]]:
    """Active tasks by status, most urgent and longest waiting first (one query)."""
    columns = {TaskStatus.PENDING: [], TaskStatus.ASSIGNED: [], TaskStatus.IN_PROGRESS: []}
    priority_rank = Case(
        *(When(priority=p, then=Value(rank)) for p, rank in PRIORITY_ORDER.items()),
        output_field=IntegerField(),
    )
    tasks = (
        EmergencyTask.objects.filter(status__in=list(columns))
        .select_related("paramedic")
        .annotate(priority_rank=priority_rank)
        .order_by("priority_rank", "created_at")
    )
    for task in tasks:
        columns[task.status].append(task)
    return columns


def _percentile(queryset, expression, fraction: float):
    """The nearest-rank percentile of `expression`, sorted and picked by the database.

    Portable (SQLite and PostgreSQL): a COUNT, then one ORDER BY ... OFFSET row.
    """
    values = queryset.annotate(_value=expression).exclude(_value__isnull=True)
    count = values.count()
    if count == 0:
        return None
    index = max(0, min(count - 1, round(fraction * count + 0.5) - 1))
    return values.order_by("_value").values_list("_value", flat=True)[index]


def response_times(start, end) -> list[dict]:
    """Median and 90th percentile of each response interval for tasks created in [start, end)."""
    period = EmergencyTask.objects.filter(created_at__gte=start, created_at__lt=end)
    figures = []
    for label, begin, finish in RESPONSE_INTERVALS:
        interval = ExpressionWrapper(F(finish) - F(begin), output_field=DurationField())
        scoped = period.filter(**{f"{begin}__isnull": False, f"{finish}__isnull": False})
        figures.append(
            {
                "label": label,
                "count": scoped.count(),
                "median": _percentile(scoped, interval, 0.5),
                "p90": _percentile(scoped, interval, 0.9),
            }
        )
    return figures


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
