"""Nearest-available dispatch (design §6): who should take a task, and why.

Ranking, best first:
0. when the roster is in use (any shift exists), paramedics on shift now, or not
   planned by the roster at all (no shifts), before those outside their shifts
   (flagged `off_shift`, design §14);
1. a fresh location before a stale one (older than STALE_LOCATION_MINUTES);
2. for `critical` tasks, certification `paramedic`/`critical_care` before others;
3. great-circle distance from the task.

The search is indexed, not a scan: each tier is queried inside a bounding box
around the task (index on status, last_lat, last_lon) that widens until it holds
enough paramedics within its radius, so the cost depends on how many paramedics
are near the task, not on the size of the roster.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, FloatField, Q, QuerySet
from django.db.models.functions import ASin, Cos, Least, Power, Radians, Sin, Sqrt
from django.utils import timezone

from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus, ShiftAssignment
from paramedics.selectors import has_shifts_expression, on_shift_expression

from .models import EmergencyTask, TaskPriority

EARTH_RADIUS_KM = 6371.0088
# Radii tried in turn; the last one covers the whole planet.
SEARCH_RADII_KM = (5, 20, 80, 320, 1280, 20040)
CRITICAL_CERTIFICATIONS = (CertificationLevel.PARAMEDIC, CertificationLevel.CRITICAL_CARE)


@dataclass
class Candidate:
    paramedic: Paramedic
    distance_km: float
    location_age_s: int
    stale: bool
    preferred_certification: bool | None  # None when the task does not ask for one
    off_shift: bool = False  # has shifts, but none now: ranked after those on shift
    on_shift: bool = False
    rank: int = 0
    reasons: list[str] = field(default_factory=list)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


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


def _tiers(task: EmergencyTask, stale_before: datetime) -> list[Q]:
    fresh = Q(last_location_at__gte=stale_before)
    stale = Q(last_location_at__lt=stale_before)
    if task.priority == TaskPriority.CRITICAL:
        qualified = Q(certification_level__in=CRITICAL_CERTIFICATIONS)
        return [fresh & qualified, fresh & ~qualified, stale & qualified, stale & ~qualified]
    return [fresh, stale]


def _roster_tiers(tiers: list[Q], now: datetime) -> list[tuple[Q, bool]]:
    """Each tier split in two when the roster is in use: on shift (or never planned)
    first, then outside a shift. (tier, off_shift) pairs."""
    if not ShiftAssignment.objects.exists():
        return [(tier, False) for tier in tiers]
    on_roster = Q(on_shift_expression(now)) | ~Q(has_shifts_expression())
    return [(tier & on_roster, False) for tier in tiers] + [
        (tier & ~on_roster, True) for tier in tiers
    ]


def _nearest_in_tier(
    task: EmergencyTask, tier: Q, limit: int, *, now: datetime | None = None
) -> list[Paramedic]:
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
    stale_after = timedelta(minutes=settings.STALE_LOCATION_MINUTES)
    stale_before = now - stale_after
    critical = task.priority == TaskPriority.CRITICAL
    ranked: list[Candidate] = []
    tiers = _roster_tiers(_tiers(task, stale_before), now)
    roster_in_use = len(tiers) > len(_tiers(task, stale_before))
    for tier, off_shift in tiers:
        if len(ranked) >= limit:
            break
        found = _nearest_in_tier(
            task, tier, limit - len(ranked), now=now if roster_in_use else None
        )
        for paramedic in found:
            age = max(0, int((now - paramedic.last_location_at).total_seconds()))
            candidate = Candidate(
                paramedic=paramedic,
                distance_km=round(paramedic.distance_km, 3),
                location_age_s=age,
                # The same comparison as the tiers, so the flag matches the rank.
                stale=paramedic.last_location_at < stale_before,
                preferred_certification=(
                    paramedic.certification_level in CRITICAL_CERTIFICATIONS if critical else None
                ),
                off_shift=off_shift,
                on_shift=getattr(paramedic, "on_shift", False),
                rank=len(ranked) + 1,
            )
            candidate.reasons = _reasons(candidate, stale_after)
            ranked.append(candidate)
    return ranked


def _reasons(candidate: Candidate, stale_after: timedelta) -> list[str]:
    level = candidate.paramedic.certification_level
    reasons = [f"{candidate.distance_km:.1f} km from the task"]
    if candidate.stale:
        reasons.append(
            f"location is stale ({candidate.location_age_s // 60} min old, over "
            f"{int(stale_after.total_seconds() // 60)} min): ranked after fresh locations"
        )
    else:
        reasons.append(f"location is fresh ({candidate.location_age_s} s old)")
    if candidate.preferred_certification is True:
        reasons.append(f"certified {level}: preferred for a critical task")
    elif candidate.preferred_certification is False:
        reasons.append(
            f"certified {level}: ranked after paramedic/critical_care for a critical task"
        )
    if candidate.off_shift:
        reasons.append("off_shift: outside its shifts, ranked after paramedics on shift")
    elif candidate.on_shift:
        reasons.append("on shift now")
    return reasons
