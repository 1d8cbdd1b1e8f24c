import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core.roles import is_supervisor, paramedic_of

from .models import LocationFix, Paramedic, ParamedicStatus, Shift, ShiftAssignment, Station


def paramedics_visible_to(user) -> QuerySet[Paramedic]:
    """Supervisors see the roster; a paramedic sees itself; others nothing.

    Scoping (rather than a 403) makes another paramedic's profile a 404.
    """
    paramedics = Paramedic.objects.all()
    if is_supervisor(user):
        return paramedics
    me = paramedic_of(user)
    return paramedics.filter(pk=me.pk) if me else paramedics.none()


def own_paramedic(user, paramedic_id) -> Paramedic:
    """The caller's own profile when the URL names it, answered from the profile
    already loaded with its user (no query); anyone else's, or none, is a 404."""
    me = paramedic_of(user)
    try:
        if me is not None and uuid.UUID(str(paramedic_id)) == me.pk:
            return me
    except ValueError:
        pass
    raise Http404("No such paramedic.")


def paramedic_visible_to(user, paramedic_id) -> Paramedic:
    """The paramedic named in a URL, if the caller may act on it; else 404.

    A paramedic addressing itself is answered by own_paramedic (no query), the
    common case for devices polling their tasks.
    """
    if paramedic_of(user) is not None and not is_supervisor(user):
        return own_paramedic(user, paramedic_id)
    return get_object_or_404(paramedics_visible_to(user), pk=paramedic_id)


def location_trail(paramedic: Paramedic, *, since: datetime, until: datetime):
    """A paramedic's fixes in [since, until), oldest first: a range of the primary
    key (paramedic, at), and on PostgreSQL only the days the window touches."""
    return LocationFix.objects.filter(paramedic=paramedic, at__gte=since, at__lt=until).order_by(
        "at"
    )


# --- Rosters (design §14) ----------------------------------------------------------


def covering(at: datetime) -> Q:
    """ShiftAssignment rows whose shift runs at `at` (half-open: [starts_at, ends_at))."""
    return Q(starts_at__lte=at, ends_at__gt=at)


def on_shift_expression(at: datetime) -> Exists:
    """For Paramedic querysets: the paramedic has a shift running at `at`."""
    return Exists(ShiftAssignment.objects.filter(covering(at), paramedic_id=OuterRef("pk")))


def has_shifts_expression() -> Exists:
    """For Paramedic querysets: the roster plans this paramedic (it has any shift)."""
    return Exists(ShiftAssignment.objects.filter(paramedic_id=OuterRef("pk")))


def is_on_shift(paramedic: Paramedic, *, at: datetime | None = None) -> bool:
    return ShiftAssignment.objects.filter(
        covering(at or timezone.now()), paramedic_id=paramedic.pk
    ).exists()


def shifts_with_people(shifts: QuerySet[Shift]) -> QuerySet[Shift]:
    """What the API shows of shifts, in a fixed number of queries."""
    return shifts.prefetch_related(
        Prefetch("assignments", queryset=ShiftAssignment.objects.order_by("pk"))
    )


def current_and_upcoming_shifts(paramedic: Paramedic, *, now: datetime | None = None):
    """A paramedic's shifts that have not ended, soonest first."""
    return shifts_with_people(
        Shift.objects.filter(
            assignments__paramedic_id=paramedic.pk, ends_at__gt=now or timezone.now()
        ).order_by("starts_at", "pk")
    )


@dataclass
class CoverageGap:
    """A stretch of a day when fewer than min_staff are on shift."""

    starts_at: datetime
    ends_at: datetime
    staffed: int
    needed: int

    @property
    def hours(self) -> float:
        return (self.ends_at - self.starts_at).total_seconds() / 3600


@dataclass
class DayCoverage:
    day: date
    staffed_hours: float  # person-hours on shift at the station that day
    needed_hours: float  # min_staff x 24
    gaps: list[CoverageGap] = field(default_factory=list)


def week_coverage(
    *, start: date, days: int = 7, zone: tzinfo = UTC
) -> list[tuple[Station, list[DayCoverage]]]:
    """Each station's coverage per day (local days of `zone`, the console's) against
    its min_staff, in two queries.

    A gap is a stretch where fewer than min_staff paramedics are on shift;
    neighbouring stretches with the same headcount are one gap. A day that a clock
    change makes 23 or 25 hours long needs that many hours of cover.
    """
    bounds = [
        datetime.combine(start + timedelta(days=offset), time.min, tzinfo=zone).astimezone(UTC)
        for offset in range(days + 1)
    ]
    stations = list(Station.objects.order_by("code"))
    periods: dict = defaultdict(list)
    for station_id, starts_at, ends_at in ShiftAssignment.objects.filter(
        starts_at__lt=bounds[-1], ends_at__gt=bounds[0]
    ).values_list("shift__station_id", "starts_at", "ends_at"):
        periods[station_id].append((starts_at, ends_at))
    week = []
    for station in stations:
        row = [
            _day_coverage(station, periods[station.pk], day, day_start, day_end)
            for day, (day_start, day_end) in zip(
                (start + timedelta(days=offset) for offset in range(days)),
                itertools.pairwise(bounds),
                strict=True,
            )
        ]
        week.append((station, row))
    return week


def _day_coverage(
    station: Station, periods, day: date, day_start: datetime, day_end: datetime
) -> DayCoverage:
    clipped = [
        (max(s, day_start), min(e, day_end)) for s, e in periods if s < day_end and e > day_start
    ]
    staffed = sum((e - s).total_seconds() for s, e in clipped) / 3600
    hours = (day_end - day_start).total_seconds() / 3600
    coverage = DayCoverage(day=day, staffed_hours=staffed, needed_hours=station.min_staff * hours)
    if station.min_staff == 0:
        return coverage
    points = sorted({day_start, day_end, *(s for s, _ in clipped), *(e for _, e in clipped)})
    for a, b in itertools.pairwise(points):
        count = sum(1 for s, e in clipped if s <= a and e >= b)
        if count >= station.min_staff:
            continue
        last = coverage.gaps[-1] if coverage.gaps else None
        if last and last.ends_at == a and last.staffed == count:
            last.ends_at = b
        else:
            coverage.gaps.append(CoverageGap(a, b, count, station.min_staff))
    return coverage


@dataclass
class StationNow:
    """A station on the dispatch board (design §19): who is free there now, and its
    cover now (paramedics on shift) against min_staff."""

    code: str
    name: str
    min_staff: int
    on_shift: int
    free: list[Paramedic] = field(default_factory=list)

    @property
    def short(self) -> bool:
        return self.on_shift < self.min_staff


def stations_now(*, now: datetime, stale_after: timedelta) -> list[StationNow]:
    """Each station (and "no station" when needed) with its available paramedics, each
    marked `stale` when its location is unknown or older than `stale_after` (dispatch
    ranks those last). Two queries."""
    stations = {
        s.code: StationNow(s.code, s.name, s.min_staff, s.on_shift)
        for s in Station.objects.annotate(
            on_shift=Count(
                "shifts__assignments",
                filter=Q(shifts__assignments__starts_at__lte=now)
                & Q(shifts__assignments__ends_at__gt=now),
            )
        ).order_by("code")
    }
    for person in Paramedic.objects.filter(status=ParamedicStatus.AVAILABLE).order_by(
        "badge_number"
    ):
        person.stale = (
            person.last_location_at is None or now - person.last_location_at > stale_after
        )
        code = person.base_station_id or ""
        if code not in stations:
            stations[code] = StationNow(code, "No station", 0, 0)
        stations[code].free.append(person)
    return list(stations.values())
