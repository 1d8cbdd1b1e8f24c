"""Paramedic profiles and their availability (design §5, §6).

A person chooses `available` or `off_duty` (paramedic_update, under a row lock);
`on_task` is set and cleared only by paramedic_claim and paramedic_release, which
the task state machine calls in its transaction (the task row locked first, then
the paramedic's: the lock order of tasks.services). Every status change is
announced to the live streams as one ParamedicEvent.STATUS_CHANGED.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, Conflict, Duplicate, InvalidTransition
from integrations import live

from ..events import AGGREGATE_TYPE, ParamedicEvent
from ..models import Paramedic, ParamedicStatus
from ..selectors import is_on_shift
from .stations import station_code_for

User = get_user_model()

# Statuses a person may choose; `on_task` belongs to the task state machine.
SELECTABLE_STATUSES = (ParamedicStatus.AVAILABLE, ParamedicStatus.OFF_DUTY)
# How far ahead of our clock a device's location timestamp may be (clock skew).
LOCATION_FUTURE_TOLERANCE = timedelta(minutes=5)


class NotOnShift(Conflict):
    code = "not_on_shift"
    default_detail = "The paramedic is not on a shift now (ROSTER_REQUIRES_SHIFT)."


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
            if "status" in fields:
                _announce_status(locked)
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


class ParamedicUnavailable(Conflict):
    code = "paramedic_unavailable"
    default_detail = "The paramedic is not available."


def paramedic_claim(*, paramedic_id, task) -> None:
    """`available` -> `on_task` holding `task`, or 409 `paramedic_unavailable`
    (`paramedic_not_found` for an id that names nobody).

    The UPDATE's WHERE clause is the arbiter: of two concurrent claims only one
    finds the row still `available` (PostgreSQL re-checks it after the first
    commits; SQLite serialises writers). Call it inside the task's transaction,
    with the task row locked.
    """
    claimed = Paramedic.objects.filter(
        pk=paramedic_id, status=ParamedicStatus.AVAILABLE, current_task__isnull=True
    ).update(status=ParamedicStatus.ON_TASK, current_task=task, updated_at=timezone.now())
    if not claimed:
        if not Paramedic.objects.filter(pk=paramedic_id).exists():
            raise ParamedicUnavailable("No such paramedic.", code="paramedic_not_found")
        raise ParamedicUnavailable()
    _announce_status(paramedic_id)


def paramedic_release(*, paramedic_id, task) -> None:
    """`on_task` -> `available`, if the paramedic still holds `task` (completed,
    declined or cancelled). Inside the task's transaction, like paramedic_claim."""
    released = Paramedic.objects.filter(pk=paramedic_id, current_task=task).update(
        status=ParamedicStatus.AVAILABLE, current_task=None, updated_at=timezone.now()
    )
    if released:
        _announce_status(paramedic_id)


def _announce_status(paramedic) -> None:
    """Tell the live streams (the dispatch board) that this paramedic's status changed."""
    live.record(
        kind=ParamedicEvent.STATUS_CHANGED,
        subject_type=AGGREGATE_TYPE,
        subject_id=getattr(paramedic, "pk", paramedic),
    )
