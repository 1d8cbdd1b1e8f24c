"""Every write to a Paramedic, a Station or a Shift goes through these functions.

`on_task` is never set here: the task state machine (tasks.services) owns it.

Rosters (DESIGN §14): a paramedic is never in two overlapping shifts. On
PostgreSQL an exclusion constraint on ShiftAssignment decides (two concurrent
creations: the second waits for the first, then fails); the check here comes
first on every database, so the answer names the clashing shift, and it is the
rule on SQLite, whose single writer serialises the check and the insert.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, Conflict, Duplicate, InvalidTransition
from integrations import live

from .events import ParamedicEvent, record_paramedic_event
from .models import Paramedic, ParamedicStatus, Shift, ShiftAssignment, Station
from .selectors import is_on_shift

logger = logging.getLogger(__name__)

User = get_user_model()

# Statuses a person may choose; `on_task` belongs to the task state machine.
SELECTABLE_STATUSES = (ParamedicStatus.AVAILABLE, ParamedicStatus.OFF_DUTY)
# How far ahead of our clock a device's location timestamp may be (clock skew).
LOCATION_FUTURE_TOLERANCE = timedelta(minutes=5)
# The login-less user the roster's automatic changes are logged as (admin history).
ROSTER_ACTOR_USERNAME = "roster-automation"


class NotOnShift(Conflict):
    code = "not_on_shift"
    default_detail = "The paramedic is not on a shift now (ROSTER_REQUIRES_SHIFT)."


class ShiftOverlap(Conflict):
    code = "shift_overlap"
    default_detail = "A paramedic would be in two overlapping shifts."


def _field_error(field: str, code: str, message: str) -> dict:
    return {field: [{"code": code, "message": message}]}


def station_code_for(code: str | None) -> str | None:
    """The stored code of the station `code` names (any case); None for ''.

    An unknown code is invalid input (400 `unknown_station`), not a new station:
    stations are created on purpose, with a name and a location.
    """
    if not code:
        return None
    found = Station.objects.filter(code__iexact=code).values_list("code", flat=True).first()
    if found is None:
        raise ApplicationError(
            f"No station has the code {code!r}.",
            code="unknown_station",
            errors=_field_error("base_station", "unknown_station", "No station has this code."),
        )
    return found


def _check_shift_rule(paramedic: Paramedic, status: str) -> None:
    if (
        status == ParamedicStatus.AVAILABLE
        and settings.ROSTER_REQUIRES_SHIFT
        and not is_on_shift(paramedic)
    ):
        raise NotOnShift(
            f"{paramedic.badge_number} is not on a shift now; only paramedics on shift may be "
            "available (ROSTER_REQUIRES_SHIFT)."
        )


def ensure_paramedic_unique(
    *, badge_number: str | None, email: str | None, exclude_pk=None
) -> None:
    """Answer 409 with the offending field before the insert, for a clear message.

    The unique constraints still decide under concurrency; see `_save_or_conflict`.
    """
    errors = {}
    others = Paramedic.objects.exclude(pk=exclude_pk)
    if badge_number is not None:
        users = User.objects.filter(username__iexact=badge_number)
        if exclude_pk is not None:
            users = users.exclude(paramedic__pk=exclude_pk)
        taken = others.filter(badge_number__iexact=badge_number).exists() or users.exists()
        if taken:
            errors["badge_number"] = [
                {"code": "duplicate_badge_number", "message": "This badge number is taken."}
            ]
    if email is not None and others.filter(email__iexact=email).exists():
        errors["email"] = [{"code": "duplicate_email", "message": "This email is taken."}]
    if errors:
        raise Duplicate("A paramedic with these values already exists.", errors=errors)


def _location_fields(location: dict | None, *, current: Paramedic | None = None) -> dict:
    """Normalise a {lat, lon, recorded_at?} dict to model fields.

    A fix older than the one stored is ignored, so a device flushing a queue of
    readings after a dead zone cannot move the paramedic back in time.
    """
    if location is None:
        return {"last_lat": None, "last_lon": None, "last_location_at": None}
    now = timezone.now()
    recorded_at: datetime = location.get("recorded_at") or now
    if recorded_at > now + LOCATION_FUTURE_TOLERANCE:
        raise ApplicationError(
            "The location's recorded_at lies in the future.",
            errors={
                "last_location": {
                    "recorded_at": [
                        {"code": "future_timestamp", "message": "recorded_at is in the future."}
                    ]
                }
            },
        )
    if current is not None and current.last_location_at and recorded_at < current.last_location_at:
        return {}
    return {
        "last_lat": location["lat"],
        "last_lon": location["lon"],
        "last_location_at": recorded_at,
    }


@transaction.atomic
def paramedic_create(
    *,
    badge_number: str,
    first_name: str,
    last_name: str,
    email: str,
    certification_level: str,
    phone: str = "",
    status: str = ParamedicStatus.OFF_DUTY,
    base_station: str = "",
    last_location: dict | None = None,
    password: str | None = None,
) -> Paramedic:
    """Create the profile and its login user (username = badge number)."""
    if status not in SELECTABLE_STATUSES:
        raise InvalidTransition("A new paramedic starts available or off duty.")
    if status == ParamedicStatus.AVAILABLE and settings.ROSTER_REQUIRES_SHIFT:
        # A new paramedic has no shift yet.
        raise NotOnShift("A new paramedic has no shift yet; create it off duty.")
    ensure_paramedic_unique(badge_number=badge_number, email=email)
    station_code = station_code_for(base_station)
    try:
        with transaction.atomic():
            user = User(
                username=badge_number, email=email, first_name=first_name, last_name=last_name
            )
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
            user.save()
            return Paramedic.objects.create(
                user=user,
                badge_number=badge_number,
                first_name=first_name,
                last_name=last_name,
                email=email,
                phone=phone,
                certification_level=certification_level,
                status=status,
                base_station_id=station_code,
                **_location_fields(last_location),
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same badge or email.
        raise Duplicate("A paramedic with these values already exists.") from exc


@transaction.atomic
def paramedic_update(*, paramedic: Paramedic, changes: dict) -> Paramedic:
    """Apply validated field changes under a row lock.

    The lock makes a status change wait for a concurrent task assignment, so a
    paramedic that has just become `on_task` cannot be set off duty by hand.
    """
    locked = Paramedic.objects.select_for_update().get(pk=paramedic.pk)
    changes = dict(changes)
    password = changes.pop("password", None)

    if "status" in changes and changes["status"] != locked.status:
        new_status = changes["status"]
        if new_status not in SELECTABLE_STATUSES:
            raise InvalidTransition("on_task is set only by assigning a task.")
        if locked.status == ParamedicStatus.ON_TASK:
            raise InvalidTransition(
                "The paramedic is on a task; finish, decline or cancel it first."
            )
        _check_shift_rule(locked, new_status)
    if "badge_number" in changes or "email" in changes:
        ensure_paramedic_unique(
            badge_number=changes.get("badge_number"),
            email=changes.get("email"),
            exclude_pk=locked.pk,
        )

    fields = {k: v for k, v in changes.items() if k not in ("last_location", "base_station")}
    if "base_station" in changes:
        fields["base_station_id"] = station_code_for(changes["base_station"])
    if "last_location" in changes:
        fields.update(_location_fields(changes["last_location"], current=locked))
    fields = {k: v for k, v in fields.items() if getattr(locked, k) != v}

    for name, value in fields.items():
        setattr(locked, name, value)
    user_fields = _sync_user(locked, fields, password)
    try:
        with transaction.atomic():
            if fields or user_fields:  # a login's change is the profile's too (ETag)
                locked.save(update_fields=[*fields, "updated_at"])
            if "status" in fields:  # the dispatch board shows who is available
                live.record(
                    kind="paramedic.status_changed",
                    subject_type="paramedic",
                    subject_id=locked.pk,
                )
            if user_fields:
                locked.user.save(update_fields=user_fields)
    except IntegrityError as exc:
        raise Duplicate("A paramedic with these values already exists.") from exc
    return locked


def _sync_user(paramedic: Paramedic, fields: dict, password: str | None) -> list[str]:
    """Keep the login user in step with the profile; returns the fields changed."""
    user = paramedic.user
    mapping = {
        "badge_number": "username",
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
    }
    changed = []
    for field, user_field in mapping.items():
        if field in fields:
            setattr(user, user_field, fields[field])
            changed.append(user_field)
    if password:
        user.set_password(password)
        changed.append("password")
    return changed


def paramedic_set_status(*, paramedic: Paramedic, status: str) -> Paramedic:
    """Mark a paramedic available or off duty (roster bulk actions, devices)."""
    return paramedic_update(paramedic=paramedic, changes={"status": status})


# --- Stations -----------------------------------------------------------------


def _ensure_station_code_free(code: str, *, exclude_pk=None) -> None:
    if Station.objects.exclude(pk=exclude_pk).filter(code__iexact=code).exists():
        raise Duplicate(
            "A station with this code already exists.",
            errors=_field_error("code", "duplicate_code", "This station code is taken."),
        )


def _station_location(location: dict | None) -> dict:
    if location is None:
        return {"lat": None, "lon": None}
    return {"lat": location["lat"], "lon": location["lon"]}


@transaction.atomic
def station_create(
    *,
    code: str,
    name: str,
    address: str = "",
    location: dict | None = None,
    min_staff: int = 1,
) -> Station:
    _ensure_station_code_free(code)
    try:
        with transaction.atomic():
            return Station.objects.create(
                code=code,
                name=name,
                address=address,
                min_staff=min_staff,
                **_station_location(location),
            )
    except IntegrityError as exc:  # a concurrent create of the same code
        raise Duplicate("A station with this code already exists.") from exc


@transaction.atomic
def station_update(*, station: Station, changes: dict) -> Station:
    """Change a station; a new code is carried to its paramedics in the same transaction
    (they refer to it by code; the foreign key is checked at commit)."""
    locked = Station.objects.select_for_update().get(pk=station.pk)
    changes = dict(changes)
    if "location" in changes:
        changes.update(_station_location(changes.pop("location")))
    old_code = locked.code
    if "code" in changes and changes["code"] != old_code:
        _ensure_station_code_free(changes["code"], exclude_pk=locked.pk)
    fields = {k: v for k, v in changes.items() if getattr(locked, k) != v}
    for name, value in fields.items():
        setattr(locked, name, value)
    if not fields:
        return locked
    try:
        with transaction.atomic():
            if "code" in fields:
                # The new code must exist before paramedics point at it, and the old one
                # must go: a new row for the code would break the station's identity, so
                # the row changes in place and the references follow it.
                Station.objects.filter(pk=locked.pk).update(code=locked.code)
                # Their profiles read differently now: a new updated_at, a new ETag.
                Paramedic.objects.filter(base_station_id=old_code).update(
                    base_station_id=locked.code, updated_at=timezone.now()
                )
            locked.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        raise Duplicate("A station with this code already exists.") from exc
    return locked


# --- Shifts -------------------------------------------------------------------


def _validate_period(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise ApplicationError(
            "A shift ends after it starts.",
            errors=_field_error("ends_at", "ends_before_start", "ends_at must be after starts_at."),
        )
    if ends_at - starts_at > timedelta(hours=Shift.MAX_LENGTH_HOURS):
        raise ApplicationError(
            f"A shift lasts at most {Shift.MAX_LENGTH_HOURS} hours.",
            errors=_field_error(
                "ends_at", "shift_too_long", f"At most {Shift.MAX_LENGTH_HOURS} h after starts_at."
            ),
        )


def _resolve_paramedics(paramedic_ids) -> list[Paramedic]:
    wanted = list(dict.fromkeys(paramedic_ids))  # order kept, duplicates dropped
    found = {p.pk: p for p in Paramedic.objects.filter(pk__in=wanted)}
    missing = [str(pk) for pk in wanted if pk not in found]
    if missing:
        raise ApplicationError(
            "Unknown paramedic(s): " + ", ".join(missing),
            errors=_field_error(
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


def _check_no_overlap(paramedics, starts_at, ends_at, *, exclude_shift=None) -> None:
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
    _validate_period(starts_at, ends_at)
    people = _resolve_paramedics([p.pk if isinstance(p, Paramedic) else p for p in paramedics])
    _check_no_overlap(people, starts_at, ends_at)
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
    _validate_period(locked.starts_at, locked.ends_at)
    current = list(locked.assignments.values_list("paramedic_id", flat=True))
    people = _resolve_paramedics(
        current
        if paramedics is None
        else [p.pk if isinstance(p, Paramedic) else p for p in paramedics]
    )
    _check_no_overlap(people, locked.starts_at, locked.ends_at, exclude_shift=locked.pk)
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


# --- The end of a shift -----------------------------------------------------------


def roster_actor():
    """The user the roster's automatic changes are logged as (it cannot log in)."""
    user, created = User.objects.get_or_create(
        username=ROSTER_ACTOR_USERNAME, defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def roster_release_ended_shifts(*, now: datetime | None = None, batch: int = 500) -> int:
    """Take `available` paramedics off duty when their shift has ended (DESIGN §14).

    One `on_task` is left alone until its task is over (it is `available` again
    then, and the next run takes it off duty); one already on its next shift stays
    available. Each change goes through paramedic_update (the same rules and lock as
    a supervisor's), is written to the admin log by ROSTER_ACTOR_USERNAME and
    records a `paramedic.shift_ended` event. Returns how many went off duty.
    """
    now = now or timezone.now()
    due = list(
        ShiftAssignment.objects.filter(released_at__isnull=True, ends_at__lte=now)
        .select_related("shift__station")
        .order_by("ends_at", "pk")[:batch]
    )
    released = 0
    actor = None
    for assignment in due:
        with transaction.atomic():
            paramedic = Paramedic.objects.select_for_update().get(pk=assignment.paramedic_id)
            if paramedic.status == ParamedicStatus.ON_TASK:
                continue  # finishes its task first; the next run sees it again
            # Claim the row: a concurrent run (two beats) does the change only once.
            claimed = ShiftAssignment.objects.filter(
                pk=assignment.pk, released_at__isnull=True
            ).update(released_at=now)
            if not claimed:
                continue
            if paramedic.status != ParamedicStatus.AVAILABLE or is_on_shift(paramedic, at=now):
                continue
            paramedic = paramedic_update(
                paramedic=paramedic, changes={"status": ParamedicStatus.OFF_DUTY}
            )
            actor = actor or roster_actor()
            LogEntry.objects.log_actions(
                actor.pk,
                [paramedic],
                CHANGE,
                change_message=(
                    f"Marked off_duty: shift {assignment.shift_id} at "
                    f"{assignment.shift.station.code} ended at {assignment.ends_at.isoformat()}."
                ),
                single_object=True,
            )
            record_paramedic_event(
                paramedic,
                ParamedicEvent.SHIFT_ENDED,
                from_status=ParamedicStatus.AVAILABLE,
                shift=assignment.shift,
                at=assignment.ends_at,
            )
            released += 1
    if released:
        logger.info("roster: %d paramedic(s) off duty after their shift", released)
    return released
