"""Dispatch (design §6, §18): who should take a task, and why.

The crew that gets there first and can do the job, as a dispatcher would choose:

0. when the roster is in use (any shift exists), paramedics on shift now, or not
   planned by the roster at all, before those outside their shifts (flagged
   `off_shift`, design §14);
1. within that, by estimated arrival (integrations.routing: road times with
   ROUTING=pgrouting, else the straight-line estimate). A location older than
   STALE_LOCATION_MINUTES is ranked on a pessimistic arrival: the crew may have
   driven away from its last fix for as long as the fix is old (at ROUTING_SPEED_KMH);
2. the call type's plan: a candidate with the plan's certification (or higher) comes
   first only while it still meets the task's target, or arrives at most
   QUALIFIED_EXTRA_MINUTES after the fastest; otherwise the fastest is recommended,
   with "qualified responder N min further: consider an intercept".

Who is considered: in each roster tier, the DISPATCH_POOL nearest by great-circle
distance (and, when the plan asks for a certification, the DISPATCH_POOL nearest of
those who have it), found by an indexed search (a widening bounding box on status,
last_lat, last_lon), so the cost depends on how many paramedics are near the task,
not on the size of the roster. All of them are timed by one travel_seconds call.
The pool does not depend on `limit` (up to its size), so the top of /candidates is
what `assign {}` takes.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, FloatField, Q, QuerySet, TextChoices
from django.db.models.functions import ASin, Cos, Least, Power, Radians, Sin, Sqrt
from django.utils import timezone

from integrations.routing import ROAD, estimate_seconds, travel_seconds
from paramedics.models import Paramedic, ParamedicStatus, ShiftAssignment
from paramedics.selectors import has_shifts_expression, on_shift_expression

from .models import EmergencyTask, TaskPriority

EARTH_RADIUS_KM = 6371.0088
# Radii tried in turn; the last one covers the whole planet.
SEARCH_RADII_KM = (5, 20, 80, 320, 1280, 20040)
# How many of the nearest (by great circle) are timed in each roster tier.
DISPATCH_POOL = 25
EMERGENCY_PRIORITIES = (TaskPriority.CRITICAL, TaskPriority.URGENT)


class Flag(TextChoices):
    STALE_LOCATION = "stale_location", "Location older than STALE_LOCATION_MINUTES"
    OFF_SHIFT = "off_shift", "Outside its shifts"
    BELOW_PLAN = "below_plan", "Certification below what the call type's plan asks"
    MISSES_TARGET = "misses_target", "Arrives after the task's target"
    NO_ROAD_TIME = "no_road_time", "Road routing is on, but this time is an estimate"


@dataclass
class Candidate:
    paramedic: Paramedic
    distance_km: float
    location_age_s: int
    stale: bool
    # Meets the plan's certification; None when the plan asks for none.
    preferred_certification: bool | None
    eta_seconds: int = 0
    meets_target: bool = False
    travel_source: str = "estimate"
    off_shift: bool = False  # has shifts, but none now: ranked after those on shift
    on_shift: bool = False
    rank: int = 0
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    # Rank 1 only: whom the ranking recommends and why, in one sentence.
    recommendation: str | None = None
    travel_note: str = ""

    @property
    def eta_minutes(self) -> int:
        """Whole minutes, rounded up: what a dispatcher is told."""
        return math.ceil(self.eta_seconds / 60)


def _distance_expression(lat: float, lon: float):
    """Haversine in SQL (PostgreSQL natively; SQLite through Django's functions)."""
    dphi = Radians(F("last_lat") - lat)
    dlmb = Radians(F("last_lon") - lon)
    a = Power(Sin(dphi / 2), 2) + math.cos(math.radians(lat)) * Cos(Radians(F("last_lat"))) * Power(
        Sin(dlmb / 2), 2
    )
    return 2 * EARTH_RADIUS_KM * ASin(Least(Sqrt(a), 1.0, output_field=FloatField()))


def _bounding_box(lat: float, lon: float, radius_km: float) -> Q | None:
    """A lat/lon box containing the whole circle (on the sphere, not a flat map).

    None when it would span the globe. The circle's widest longitude offset is
    asin(sin(r/R) / cos(lat)), larger than the flat-map r / cos(lat).
    """
    angle = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angle)
    if lat - dlat <= -90 or lat + dlat >= 90:
        return None  # the circle reaches a pole: every longitude is inside
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    dlon = 180.0 if ratio >= 1 else math.degrees(math.asin(ratio))
    if dlon >= 180 or lon - dlon < -180 or lon + dlon > 180:
        # Crossing the antimeridian: keep the latitude band, drop the lon filter.
        return Q(last_lat__range=(lat - dlat, lat + dlat))
    return Q(last_lat__range=(lat - dlat, lat + dlat), last_lon__range=(lon - dlon, lon + dlon))


def _roster_tiers(now: datetime) -> list[tuple[Q, bool]]:
    """(filter, off_shift) per roster tier: on shift (or never planned) first, then
    outside a shift, when the roster is in use; else everyone in one tier."""
    if not ShiftAssignment.objects.exists():
        return [(Q(), False)]
    on_roster = Q(on_shift_expression(now)) | ~Q(has_shifts_expression())
    return [(on_roster, False), (~on_roster, True)]


def _nearest(task: EmergencyTask, tier: Q, limit: int, *, now: datetime | None) -> list[Paramedic]:
    """The `limit` available paramedics nearest to the task in `tier` (great circle)."""
    base: QuerySet = Paramedic.objects.filter(
        tier, status=ParamedicStatus.AVAILABLE, last_lat__isnull=False
    ).annotate(distance_km=_distance_expression(task.lat, task.lon))
    if now is not None:
        base = base.annotate(on_shift=on_shift_expression(now))
    for radius in SEARCH_RADII_KM:
        box = _bounding_box(task.lat, task.lon, radius)
        queryset = base.filter(box) if box is not None else base
        if radius != SEARCH_RADII_KM[-1]:
            queryset = queryset.filter(distance_km__lte=radius)
        found = list(queryset.order_by("distance_km", "pk")[:limit])
        # Fewer than `limit` inside this radius: someone closer than the next
        # radius but outside this one could still belong in the list, so widen.
        if len(found) >= limit or radius == SEARCH_RADII_KM[-1]:
            return found
    return []  # pragma: no cover - the last radius always returns


def rank_candidates(task: EmergencyTask, *, limit: int = 10) -> list[Candidate]:
    """The best `limit` available paramedics for `task`, each with its reasons."""
    now = timezone.now()
    plan = task.call_type
    qualified_levels = plan.qualified_levels
    pool_size = max(limit, DISPATCH_POOL)
    tiers = _roster_tiers(now)
    roster_in_use = len(tiers) > 1
    ranked: list[Candidate] = []
    for tier, off_shift in tiers:
        if len(ranked) >= limit:
            break
        shift_at = now if roster_in_use else None
        found = {p.pk: p for p in _nearest(task, tier, pool_size, now=shift_at)}
        if qualified_levels is not None:
            # A qualified crew beyond the nearest few may still be the one to send.
            qualified = tier & Q(certification_level__in=qualified_levels)
            for paramedic in _nearest(task, qualified, pool_size, now=shift_at):
                found.setdefault(paramedic.pk, paramedic)
        candidates = _timed(task, list(found.values()), now, off_shift=off_shift)
        for candidate in _in_plan_order(task, candidates)[: limit - len(ranked)]:
            candidate.rank = len(ranked) + 1
            ranked.append(candidate)
    if ranked:
        ranked[0].recommendation = _recommendation(ranked[0])
    return ranked


def _timed(
    task: EmergencyTask, paramedics: list[Paramedic], now: datetime, *, off_shift: bool
) -> list[Candidate]:
    """Candidates with their (pessimistic) arrival, flags and first reasons."""
    emergency = task.priority in EMERGENCY_PRIORITIES
    stale_after = timedelta(minutes=settings.STALE_LOCATION_MINUTES)
    stale_before = now - stale_after
    qualified_levels = task.call_type.qualified_levels
    travels = travel_seconds(
        [(p.last_lat, p.last_lon) for p in paramedics], (task.lat, task.lon), emergency=emergency
    )
    target_s = task.target_minutes * 60
    candidates = []
    for paramedic, travel in zip(paramedics, travels, strict=True):
        age = max(0, int((now - paramedic.last_location_at).total_seconds()))
        stale = paramedic.last_location_at < stale_before
        # Where a stale crew may be now: as far from its fix as it could have driven.
        drift_km = age / 3600 * settings.ROUTING_SPEED_KMH if stale else 0.0
        eta = round(travel.seconds + estimate_seconds(drift_km, emergency=emergency))
        candidate = Candidate(
            paramedic=paramedic,
            distance_km=round(paramedic.distance_km, 3),
            location_age_s=age,
            stale=stale,
            preferred_certification=(
                paramedic.certification_level in qualified_levels
                if qualified_levels is not None
                else None
            ),
            eta_seconds=eta,
            meets_target=eta <= target_s,
            travel_source=travel.source,
            travel_note=travel.note,
            off_shift=off_shift,
            on_shift=getattr(paramedic, "on_shift", False),
        )
        candidate.flags = _flags(candidate)
        candidate.reasons = _reasons(task, candidate, stale_after, drift_km)
        candidates.append(candidate)
    return candidates


def _in_plan_order(task: EmergencyTask, candidates: list[Candidate]) -> list[Candidate]:
    """By arrival; qualified crews first while the plan's rule prefers them."""
    by_arrival = sorted(candidates, key=lambda c: (c.eta_seconds, c.distance_km, c.paramedic.pk))
    if not by_arrival or task.call_type.qualified_levels is None:
        return by_arrival
    fastest = by_arrival[0].eta_seconds
    extra_s = settings.QUALIFIED_EXTRA_MINUTES * 60
    preferred = [
        c
        for c in by_arrival
        if c.preferred_certification and (c.meets_target or c.eta_seconds <= fastest + extra_s)
    ]
    others = [c for c in by_arrival if c not in preferred]
    certification = task.call_type.certification
    if preferred:
        for c in preferred:
            c.reasons.append(
                f"meets the plan ({certification} or higher) and "
                + (
                    "the target: preferred"
                    if c.meets_target
                    else f"is within {settings.QUALIFIED_EXTRA_MINUTES} min of the fastest: "
                    "preferred"
                )
            )
        return preferred + others
    qualified = [c for c in by_arrival if c.preferred_certification]
    top = by_arrival[0]
    if qualified:
        further = math.ceil((qualified[0].eta_seconds - fastest) / 60)
        top.reasons.append(
            f"qualified responder {further} min further: consider an intercept "
            f"({qualified[0].paramedic.badge_number}, {certification} or higher)"
        )
    else:
        top.reasons.append(f"no {certification} or higher available: the fastest crew")
    return by_arrival


def _flags(candidate: Candidate) -> list[str]:
    flags = []
    if candidate.stale:
        flags.append(Flag.STALE_LOCATION)
    if candidate.off_shift:
        flags.append(Flag.OFF_SHIFT)
    if candidate.preferred_certification is False:
        flags.append(Flag.BELOW_PLAN)
    if not candidate.meets_target:
        flags.append(Flag.MISSES_TARGET)
    if settings.ROUTING == "pgrouting" and candidate.travel_source != ROAD:
        flags.append(Flag.NO_ROAD_TIME)
    return [str(flag) for flag in flags]


def _minutes(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)} min" if seconds >= 60 else f"{seconds:.0f} s"


def _reasons(
    task: EmergencyTask, candidate: Candidate, stale_after: timedelta, drift_km: float
) -> list[str]:
    source = "by road" if candidate.travel_source == ROAD else "straight-line estimate"
    reasons = [
        f"arrives in about {_minutes(candidate.eta_seconds)} ({source}, "
        f"{candidate.distance_km:.1f} km away)"
    ]
    if candidate.travel_note:
        reasons.append(candidate.travel_note)
    if candidate.meets_target:
        reasons.append(f"meets the {task.target_minutes} min target")
    else:
        late = candidate.eta_seconds - task.target_minutes * 60
        reasons.append(f"misses the {task.target_minutes} min target by {_minutes(late)}")
    if candidate.stale:
        reasons.append(
            f"location is stale ({candidate.location_age_s // 60} min old, over "
            f"{int(stale_after.total_seconds() // 60)} min): arrival widened for up to "
            f"{drift_km:.1f} km of driving since"
        )
    else:
        reasons.append(f"location is fresh ({candidate.location_age_s} s old)")
    level = candidate.paramedic.certification_level
    if candidate.preferred_certification is False:
        reasons.append(f"certified {level}: below the plan's {task.call_type.certification}")
    else:
        reasons.append(f"certified {level}")
    if candidate.off_shift:
        reasons.append("off_shift: outside its shifts, ranked after paramedics on shift")
    elif candidate.on_shift:
        reasons.append("on shift now")
    return reasons


def _recommendation(top: Candidate) -> str:
    """One sentence for the board's default choice: whom, and why."""
    medic = top.paramedic
    why = [f"{medic.certification_level}", f"about {_minutes(top.eta_seconds)}"]
    why.append("meets the target" if top.meets_target else "misses the target")
    intercept = [r for r in top.reasons if "consider an intercept" in r or r.startswith("no ")]
    return f"{medic.badge_number} {medic.full_name} ({', '.join(why + intercept)})"
