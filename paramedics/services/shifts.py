"""Shifts (design §14): a station, a period of at most 24 h and its paramedics.

A paramedic is never in two overlapping shifts. On PostgreSQL an exclusion
constraint on ShiftAssignment decides (two concurrent creations: the second waits
for the first, then fails); the check here comes first on every database, so the
answer names the clashing shift, and it is the rule on SQLite, whose single writer
serialises the check and the insert.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, Conflict, field_error

from ..models import Paramedic, Shift, ShiftAssignment, Station


class ShiftOverlap(Conflict):
    code = "shift_overlap"
    default_detail = "A paramedic would be in two overlapping shifts."


def validate_shift_period(starts_at: datetime, ends_at: datetime) -> None:
    """A shift ends after it starts, at most Shift.MAX_LENGTH_HOURS later (400 with the
    field `ends_at`)."""
    if ends_at <= starts_at:
        message = "A shift ends after it starts."
        raise ApplicationError(message, errors=field_error("ends_at", "ends_before_start", message))
    if ends_at - starts_at > timedelta(hours=Shift.MAX_LENGTH_HOURS):
        message = f"A shift lasts at most {Shift.MAX_LENGTH_HOURS} hours."
        raise ApplicationError(message, errors=field_error("ends_at", "shift_too_long", message))


def _resolve_paramedics(paramedic_ids) -> list[Paramedic]:
    wanted = list(dict.fromkeys(paramedic_ids))  # order kept, duplicates dropped
    found = {p.pk: p for p in Paramedic.objects.filter(pk__in=wanted)}
    missing = [str(pk) for pk in wanted if pk not in found]
    if missing:
        raise ApplicationError(
            "Unknown paramedic(s): " + ", ".join(missing),
            errors=field_error(
                "paramedics", "unknown_paramedic", "No paramedic has the id " + ", ".join(missing)
            ),
        )
    return [found[pk] for pk in wanted]


def find_overlap(
    *, paramedic_ids, starts_at: datetime, ends_at: datetime, exclude_shift=None
) -> ShiftAssignment | None:
    """The first existing assignment of one of these paramedics that overlaps the period
    (half-open: a shift ending at 14:00 and one starting at 14:00 do not overlap)."""
    clashes = ShiftAssignment.objects.filter(
        paramedic_id__in=list(paramedic_ids), starts_at__lt=ends_at, ends_at__gt=starts_at
    )
    if exclude_shift is not None:
        clashes = clashes.exclude(shift_id=exclude_shift)
    return clashes.select_related("paramedic", "shift").order_by("starts_at", "pk").first()


def _overlap_error(clash: ShiftAssignment) -> ShiftOverlap:
    shift = clash.shift
    message = (
        f"{clash.paramedic.badge_number} is already on shift {shift.pk} at "
        f"{shift.station_id} from {shift.starts_at.isoformat()} to {shift.ends_at.isoformat()}."
    )
    return ShiftOverlap(
        message,
        errors={
            "paramedics": [
                {
                    "code": "shift_overlap",
                    "message": message,
                    "paramedic": str(clash.paramedic_id),
                    "shift": str(shift.pk),
                }
            ]
        },
    )


def check_no_overlap(paramedics, starts_at, ends_at, *, exclude_shift=None) -> None:
    """409 `shift_overlap` naming the clash if one of these paramedics is on another
    shift in the period."""
    clash = find_overlap(
        paramedic_ids=[p.pk for p in paramedics],
        starts_at=starts_at,
        ends_at=ends_at,
        exclude_shift=exclude_shift,
    )
    if clash is not None:
        raise _overlap_error(clash)


def _write_assignments(shift: Shift, paramedics, *, now: datetime) -> None:
    """Insert the assignments; a lost race with an overlapping shift is a 409 naming it."""
    # A shift already over when it is entered (history, an import of last week) has
    # nothing left for the shift-end job to do.
    released_at = now if shift.ends_at <= now else None
    try:
        with transaction.atomic():
            ShiftAssignment.objects.bulk_create(
                ShiftAssignment(
                    shift=shift,
                    paramedic=paramedic,
                    starts_at=shift.starts_at,
                    ends_at=shift.ends_at,
                    released_at=released_at,
                )
                for paramedic in paramedics
            )
    except IntegrityError:
        # PostgreSQL's exclusion constraint: an overlapping shift committed after our
        # check. Find it (it is visible now) to name it.
        clash = find_overlap(
            paramedic_ids=[p.pk for p in paramedics],
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            exclude_shift=shift.pk,
        )
        if clash is None:
            raise
        raise _overlap_error(clash) from None


@transaction.atomic
def shift_create(
    *,
    station: Station,
    starts_at: datetime,
    ends_at: datetime,
    paramedics=(),
    notes: str = "",
) -> Shift:
    """Plan a shift; 409 `shift_overlap` if one of its paramedics is already on duty then."""
    validate_shift_period(starts_at, ends_at)
    people = _resolve_paramedics([p.pk if isinstance(p, Paramedic) else p for p in paramedics])
    check_no_overlap(people, starts_at, ends_at)
    shift = Shift.objects.create(station=station, starts_at=starts_at, ends_at=ends_at, notes=notes)
    _write_assignments(shift, people, now=timezone.now())
    return shift


@transaction.atomic
def shift_update(*, shift: Shift, changes: dict) -> Shift:
    """Change a shift's station, period, notes or paramedics (the list replaces the old)."""
    locked = Shift.objects.select_for_update().get(pk=shift.pk)
    changes = dict(changes)
    paramedics = changes.pop("paramedics", None)
    for name, value in changes.items():
        setattr(locked, name, value)
    validate_shift_period(locked.starts_at, locked.ends_at)
    current = list(locked.assignments.values_list("paramedic_id", flat=True))
    people = _resolve_paramedics(
        current
        if paramedics is None
        else [p.pk if isinstance(p, Paramedic) else p for p in paramedics]
    )
    check_no_overlap(people, locked.starts_at, locked.ends_at, exclude_shift=locked.pk)
    locked.save()
    now = timezone.now()
    keep = {p.pk for p in people}
    locked.assignments.exclude(paramedic_id__in=keep).delete()
    period = {"starts_at": locked.starts_at, "ends_at": locked.ends_at}
    if "starts_at" in changes or "ends_at" in changes:
        # A shift moved into the future runs (and ends) again; one moved into the past
        # is over.
        try:
            with transaction.atomic():
                locked.assignments.update(
                    **period, released_at=now if locked.ends_at <= now else None
                )
        except IntegrityError:
            clash = find_overlap(paramedic_ids=keep, exclude_shift=locked.pk, **period)
            if clash is None:
                raise
            raise _overlap_error(clash) from None
    existing = set(locked.assignments.values_list("paramedic_id", flat=True))
    _write_assignments(locked, [p for p in people if p.pk not in existing], now=now)
    return locked


@transaction.atomic
def shift_delete(*, shift: Shift) -> None:
    """Remove a planned shift (its assignments go with it; statuses are left alone)."""
    Shift.objects.filter(pk=shift.pk).delete()
