"""Every write to a Paramedic, a Station, a Shift or the location trail goes through
these functions, one module per sub-domain: profiles and availability, location
trails, stations, shifts, and the roster's shift-end job."""

from .locations import (
    InvalidFixTime,
    TrailMaintenance,
    TrailReceipt,
    location_fixes_record,
    location_trail_maintain,
)
from .profiles import (
    LOCATION_FUTURE_TOLERANCE,
    SELECTABLE_STATUSES,
    NotOnShift,
    ParamedicUnavailable,
    ensure_paramedic_unique,
    paramedic_claim,
    paramedic_create,
    paramedic_release,
    paramedic_set_status,
    paramedic_update,
)
from .roster import ROSTER_ACTOR_USERNAME, roster_actor, roster_release_ended_shifts
from .shifts import (
    ShiftOverlap,
    check_no_overlap,
    find_overlap,
    shift_create,
    shift_delete,
    shift_update,
    validate_shift_period,
)
from .stations import ensure_station_code_free, station_code_for, station_create, station_update

__all__ = [
    "LOCATION_FUTURE_TOLERANCE",
    "ROSTER_ACTOR_USERNAME",
    "SELECTABLE_STATUSES",
    "InvalidFixTime",
    "NotOnShift",
    "ParamedicUnavailable",
    "ShiftOverlap",
    "TrailMaintenance",
    "TrailReceipt",
    "check_no_overlap",
    "ensure_paramedic_unique",
    "ensure_station_code_free",
    "find_overlap",
    "location_fixes_record",
    "location_trail_maintain",
    "paramedic_claim",
    "paramedic_create",
    "paramedic_release",
    "paramedic_set_status",
    "paramedic_update",
    "roster_actor",
    "roster_release_ended_shifts",
    "shift_create",
    "shift_delete",
    "shift_update",
    "station_code_for",
    "station_create",
    "station_update",
    "validate_shift_period",
]
