"""Where to take the patient (design §21): hospitals ranked for a task.

Ranked by, in order: whether the hospital has what the call type's plan needs
(`CallType.capability`; none needed: every emergency department qualifies), whether
it is open (a hospital on diversion is a last resort, not hidden: the crew may still
have to go there), then by travel time from the scene (integrations.routing, the
same figures dispatch uses, design §18). Every entry says why it sits where it does.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from integrations.routing import travel_seconds
from tasks.models import Capability, EmergencyTask, TaskPriority

from .models import Hospital, HospitalStatus


@dataclass(frozen=True)
class Destination:
    hospital: Hospital
    rank: int
    capable: bool
    diversion: bool
    travel_seconds: int
    travel_source: str
    eta: datetime
    reasons: list[str]


def _reasons(hospital: Hospital, needed: str, capable: bool, minutes: float, source: str):
    reasons = []
    if needed:
        label = Capability(needed).label
        reasons.append(f"has {label}" if capable else f"lacks {label}, which the call type needs")
    if hospital.status == HospitalStatus.DIVERSION:
        why = f": {hospital.diversion_reason}" if hospital.diversion_reason else ""
        reasons.append(f"on diversion{why}")
    elif hospital.ed_beds_available == 0:
        reasons.append("open, but reports no emergency beds available")
    reasons.append(f"{minutes:.0f} min away ({source})")
    return reasons


def rank_destinations(task: EmergencyTask, *, now: datetime | None = None) -> list[Destination]:
    """Every hospital, best first, for taking the patient of `task` from the scene."""
    now = now or timezone.now()
    needed = task.call_type.capability
    hospitals = list(Hospital.objects.order_by("code"))
    # One routing call times them all: it answers many origins to one point, so it
    # is asked from each hospital to the scene (the roads' way back, nearly the same).
    # Lights and siren only for a critical patient.
    travels = travel_seconds(
        [(hospital.lat, hospital.lon) for hospital in hospitals],
        (task.lat, task.lon),
        emergency=task.priority == TaskPriority.CRITICAL,
    )
    rows = []
    for hospital, travel in zip(hospitals, travels, strict=True):
        capable = not needed or needed in hospital.capabilities
        diversion = hospital.status == HospitalStatus.DIVERSION
        rows.append((not capable, diversion, travel.seconds, hospital.code, hospital, travel))
    rows.sort(key=lambda row: row[:4])
    return [
        Destination(
            hospital=hospital,
            rank=rank,
            capable=not incapable,
            diversion=diversion,
            travel_seconds=round(travel.seconds),
            travel_source=travel.source,
            eta=now + timedelta(seconds=travel.seconds),
            reasons=_reasons(hospital, needed, not incapable, travel.seconds / 60, travel.source),
        )
        for rank, (incapable, diversion, _, _, hospital, travel) in enumerate(rows, start=1)
    ]
