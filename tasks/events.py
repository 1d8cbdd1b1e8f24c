"""The events a task emits (DESIGN §8, §11): their kinds and what they carry.

Every state change records its event in the change's own transaction through
`record_task_event`; what other services do with it is subscribed in
tasks.handlers.
"""

from enum import StrEnum

from django.utils import timezone

from integrations.outbox import record_event

from .models import EmergencyTask, TaskHistory

AGGREGATE_TYPE = "task"


class TaskEvent(StrEnum):
    CREATED = "task.created"
    ASSIGNED = "task.assigned"
    STATUS_CHANGED = "task.status_changed"
    MILESTONE = "task.milestone"
    REMINDER = "task.reminder"


def task_event_payload(task: EmergencyTask, history: TaskHistory | None) -> dict:
    """What other services are told about a task: ids and state, no patient details."""
    paramedic = None
    if task.paramedic_id is not None:
        person = task.paramedic
        paramedic = {
            "id": str(person.pk),
            "badge_number": person.badge_number,
            "phone": person.phone,
        }
    return {
        "task_id": str(task.pk),
        "request_id": task.request_id,
        "patient_id": task.patient_id,
        "consultation_id": task.consultation_id,
        "priority": task.priority,
        "status": task.status,
        "from_status": history.from_status if history else None,
        "paramedic_id": str(task.paramedic_id) if task.paramedic_id else None,
        "paramedic": paramedic,
        "address": task.address,
        "location": {"lat": task.lat, "lon": task.lon},
        # When it happened (the device's time where it reported one) and, for a
        # milestone, which (DESIGN §17).
        "at": (history.at if history else timezone.now()).isoformat(),
        "milestone": (history.milestone or None) if history else None,
    }


def record_task_event(
    task: EmergencyTask, kind: TaskEvent, history: TaskHistory | None, **extra
) -> None:
    """Write the outbox rows for this change; call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=task.pk,
        payload={**task_event_payload(task, history), **extra},
    )
