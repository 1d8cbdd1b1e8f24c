"""The events a handoff emits (design §11, §21): their kinds and what they carry.

Recorded with the change, in its transaction, through `record_handoff_event`; the
report's clinical content stays out (the hospital reads it through the API): ids,
state, acuity, ETA and times only.
"""

from enum import StrEnum

from integrations import catalogue
from integrations.outbox import record_event

from .models import Acuity, Handoff, HandoffState

AGGREGATE_TYPE = "handoff"


class HandoffEvent(StrEnum):
    SENT = "handoff.sent"
    ACKNOWLEDGED = "handoff.acknowledged"
    ARRIVED = "handoff.arrived"
    OFFLOADED = "handoff.offloaded"


SUMMARIES = {
    HandoffEvent.SENT: "A crew sent a pre-arrival report to a hospital (a ringdown).",
    HandoffEvent.ACKNOWLEDGED: "The hospital acknowledged the report.",
    HandoffEvent.ARRIVED: "The crew arrived at the hospital (milestone at_destination).",
    HandoffEvent.OFFLOADED: "The patient was handed over; the crew is free.",
}


def handoff_event_payload(handoff: Handoff) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "handoff_id": str(handoff.pk),
        "task_id": str(handoff.task_id),
        "hospital_id": str(handoff.hospital_id),
        "hospital": handoff.hospital.code,
        "paramedic_id": str(handoff.paramedic_id),
        "state": handoff.state,
        "acuity": handoff.acuity,
        "eta": iso(handoff.eta),
        "sent_at": iso(handoff.sent_at),
        "acknowledged_at": iso(handoff.acknowledged_at),
        "arrived_at": iso(handoff.arrived_at),
        "offloaded_at": iso(handoff.offloaded_at),
    }


_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"oneOf": [_TIME, {"type": "null"}]}

# The JSON Schema of handoff_event_payload (AsyncAPI: HandoffEventData).
HANDOFF_EVENT_DATA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "handoff_id",
        "task_id",
        "hospital_id",
        "hospital",
        "paramedic_id",
        "state",
        "acuity",
        "eta",
        "sent_at",
        "acknowledged_at",
        "arrived_at",
        "offloaded_at",
    ],
    "properties": {
        "handoff_id": _UUID,
        "task_id": _UUID,
        "hospital_id": _UUID,
        "hospital": {"type": "string", "description": "The hospital's code."},
        "paramedic_id": _UUID,
        "state": {"type": "string", "enum": HandoffState.values},
        "acuity": {"type": "string", "enum": Acuity.values},
        "eta": _TIME,
        "sent_at": _TIME,
        "acknowledged_at": _MAYBE_TIME,
        "arrived_at": _MAYBE_TIME,
        "offloaded_at": _MAYBE_TIME,
    },
}


def describe_events() -> None:
    for kind in HandoffEvent:
        catalogue.publishes(
            kind,
            summary=SUMMARIES[kind],
            subject="the handoff's id",
            data=HANDOFF_EVENT_DATA,
            data_name="HandoffEventData",
        )


def record_handoff_event(handoff: Handoff, kind: HandoffEvent) -> None:
    """Write the outbox rows for this change; call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=handoff.pk,
        payload=handoff_event_payload(handoff),
    )
