"""The events the roster emits (design §8, §11, §14): their kinds and what they carry.

Recorded with the change, in its transaction, through `record_paramedic_event`;
what outside services do with them is subscribed in paramedics.handlers.
"""

from datetime import datetime
from enum import StrEnum

from integrations import catalogue
from integrations.outbox import record_event

from .models import Paramedic, ParamedicStatus, Shift

AGGREGATE_TYPE = "paramedic"


class ParamedicEvent(StrEnum):
    SHIFT_ENDED = "paramedic.shift_ended"  # outbox: the Notification Service, the bus
    STATUS_CHANGED = "paramedic.status_changed"  # the live streams only (the board)


def paramedic_event_payload(
    paramedic: Paramedic, *, from_status: str, shift: Shift, at: datetime
) -> dict:
    """Ids and state only: who, which shift, what the status became."""
    return {
        "paramedic_id": str(paramedic.pk),
        "badge_number": paramedic.badge_number,
        "phone": paramedic.phone,
        "status": paramedic.status,
        "from_status": from_status,
        "shift_id": str(shift.pk),
        "station": shift.station.code,
        "at": at.isoformat(),
    }


_UUID = {"type": "string", "format": "uuid"}
_STATUS = {"type": "string", "enum": ParamedicStatus.values}

# The JSON Schema of paramedic_event_payload (AsyncAPI: ParamedicShiftEventData).
SHIFT_EVENT_DATA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "paramedic_id",
        "badge_number",
        "phone",
        "status",
        "from_status",
        "shift_id",
        "station",
        "at",
    ],
    "properties": {
        "paramedic_id": _UUID,
        "badge_number": {"type": "string"},
        "phone": {"type": "string"},
        "status": _STATUS,
        "from_status": _STATUS,
        "shift_id": _UUID,
        "station": {"type": "string", "description": "The code of the shift's station."},
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "When the shift ended.",
        },
    },
}


def describe_events() -> None:
    catalogue.publishes(
        ParamedicEvent.SHIFT_ENDED,
        summary="A shift ended: its available paramedic was taken off duty by the roster.",
        subject="the paramedic's id",
        data=SHIFT_EVENT_DATA,
        data_name="ParamedicShiftEventData",
    )


def record_paramedic_event(
    paramedic: Paramedic, kind: ParamedicEvent, *, from_status: str, shift: Shift, at: datetime
) -> None:
    """Write the outbox rows for this change; call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=paramedic.pk,
        payload=paramedic_event_payload(paramedic, from_status=from_status, shift=shift, at=at),
    )
