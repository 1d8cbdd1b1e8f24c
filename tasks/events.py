"""The events a task emits (design §8, §11): their kinds and what they carry.

Every state change records its event in the change's own transaction through
`record_task_event`; what other services do with it is subscribed in
tasks.handlers.
"""

from enum import StrEnum

from django.utils import timezone

from integrations import catalogue, live
from integrations.outbox import record_event

from .models import EmergencyTask, Milestone, ReminderKind, TaskHistory, TaskPriority, TaskStatus

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
        # milestone, which (design §17).
        "at": (history.at if history else timezone.now()).isoformat(),
        "milestone": (history.milestone or None) if history else None,
    }


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


_UUID = {"type": "string", "format": "uuid"}
_STATUS = {"type": "string", "enum": TaskStatus.values}

# The JSON Schema of task_event_payload (the AsyncAPI document's TaskEventData);
# tests check every payload the flows produce against it, strictly.
TASK_EVENT_DATA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "task_id",
        "request_id",
        "patient_id",
        "consultation_id",
        "priority",
        "status",
        "from_status",
        "paramedic_id",
        "paramedic",
        "address",
        "location",
        "at",
        "milestone",
    ],
    "properties": {
        "task_id": _UUID,
        "request_id": {"type": "string", "description": "The requester's id for the request."},
        "patient_id": {"type": "string", "description": "The Patient Service's id; no details."},
        "consultation_id": {"type": "string"},
        "priority": {"type": "string", "enum": TaskPriority.values},
        "status": _STATUS,
        "from_status": {
            "oneOf": [{"type": "string", "enum": ["", *TaskStatus.values]}, {"type": "null"}],
            "description": "The status before this change ('' if new, null in a reminder).",
        },
        "paramedic_id": _nullable(_UUID),
        "paramedic": _nullable(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "badge_number", "phone"],
                "properties": {
                    "id": _UUID,
                    "badge_number": {"type": "string"},
                    "phone": {"type": "string"},
                },
            }
        ),
        "address": {"type": "string"},
        "location": {
            "type": "object",
            "additionalProperties": False,
            "required": ["lat", "lon"],
            "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
            },
        },
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "When it happened: the device's time where it reported one.",
        },
        "milestone": _nullable({"type": "string", "enum": Milestone.values}),
    },
}

_REMINDER_DATA = {
    **TASK_EVENT_DATA,
    "required": [*TASK_EVENT_DATA["required"], "reminder"],
    "properties": {
        **TASK_EVENT_DATA["properties"],
        "reminder": {"type": "string", "enum": ReminderKind.values},
    },
}

SUMMARIES = {
    TaskEvent.CREATED: "An emergency request was received: a new pending task.",
    TaskEvent.ASSIGNED: "A supervisor assigned the task to a paramedic.",
    TaskEvent.STATUS_CHANGED: "The task moved (started, completed, declined, cancelled).",
    TaskEvent.MILESTONE: "The paramedic reported a milestone (acknowledged ... at destination).",
    TaskEvent.REMINDER: "A task waits too long: assigned but not started, or unassigned.",
}


def describe_events() -> None:
    """The catalogue entries of the bus for every task event (at start-up)."""
    for kind in TaskEvent:
        catalogue.publishes(
            kind,
            summary=SUMMARIES[kind],
            subject="the task's id",
            data=_REMINDER_DATA if kind == TaskEvent.REMINDER else TASK_EVENT_DATA,
            data_name="TaskReminderData" if kind == TaskEvent.REMINDER else "TaskEventData",
        )


# The kinds the live streams send (a reminder changes nothing a viewer sees).
LIVE_KINDS = tuple(kind for kind in TaskEvent if kind != TaskEvent.REMINDER)


def record_task_event(
    task: EmergencyTask, kind: TaskEvent, history: TaskHistory | None, **extra
) -> None:
    """Write the outbox rows for this change, and the live event its streams send
    (not for a reminder: nothing changed); call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=task.pk,
        payload={**task_event_payload(task, history), **extra},
    )
    if kind in LIVE_KINDS:
        live.record(
            kind=kind,
            subject_type=AGGREGATE_TYPE,
            subject_id=task.pk,
            audience=task.paramedic_id,
            former=history.paramedic_id if history else None,
        )
