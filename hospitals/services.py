"""Hospitals and their staff (design §21). Every change to them happens here."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Duplicate, Forbidden
from core.roles import HOSPITALS, hospital_id_of, is_supervisor

from .models import Hospital, HospitalStaff, HospitalStatus

User = get_user_model()

# What a hospital's own staff may change: its status, nothing about what it is.
STATUS_FIELDS = frozenset({"status", "diversion_reason", "ed_beds_available"})


def _normalise_status(changes: dict, hospital: Hospital | None = None) -> dict:
    """Open means no diversion reason; the reason of a diversion is kept as given."""
    status = changes.get("status", hospital.status if hospital else HospitalStatus.OPEN)
    if status == HospitalStatus.OPEN and (hospital is None or "status" in changes):
        changes["diversion_reason"] = ""
    return changes


def hospital_create(
    *,
    code: str,
    name: str,
    location: dict,
    address: str = "",
    capabilities: list[str] | None = None,
    status: str = HospitalStatus.OPEN,
    diversion_reason: str = "",
    ed_beds_available: int | None = None,
) -> Hospital:
    fields = _normalise_status({"status": status, "diversion_reason": diversion_reason})
    try:
        with transaction.atomic():
            return Hospital.objects.create(
                code=code,
                name=name,
                address=address,
                lat=location["lat"],
                lon=location["lon"],
                capabilities=sorted(set(capabilities or [])),
                ed_beds_available=ed_beds_available,
                **fields,
            )
    except IntegrityError:
        raise Duplicate("A hospital with this code exists.") from None


@transaction.atomic
def hospital_update(*, hospital: Hospital, changes: dict, actor) -> Hospital:
    """A supervisor's edit, or a hospital's staff keeping its own status (only
    STATUS_FIELDS; 403 `permission_denied` for anything else)."""
    own_status_only = hospital_id_of(actor) == hospital.pk and not set(changes) - STATUS_FIELDS
    if not is_supervisor(actor) and not own_status_only:
        raise Forbidden("A hospital's staff may change only its own hospital's status.")
    locked = Hospital.objects.select_for_update().get(pk=hospital.pk)
    changes = _normalise_status(dict(changes), locked)
    if "location" in changes:
        location = changes.pop("location")
        changes["lat"], changes["lon"] = location["lat"], location["lon"]
    if "capabilities" in changes:
        changes["capabilities"] = sorted(set(changes["capabilities"]))
    if changes.get("code", locked.code) != locked.code and (
        Hospital.objects.filter(code=changes["code"]).exclude(pk=locked.pk).exists()
    ):
        raise Duplicate("A hospital with this code exists.")
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.updated_at = timezone.now()
    locked.save(update_fields=[*changes, "updated_at"])
    return locked


def hospital_staff_create(*, hospital: Hospital, username: str, password: str) -> HospitalStaff:
    """A login for a hospital's staff: group `hospitals`, tied to this hospital."""
    if User.objects.filter(username__iexact=username).exists():
        raise Duplicate("This username is taken.")
    group, _ = Group.objects.get_or_create(name=HOSPITALS)
    try:
        with transaction.atomic():
            user = User(username=username)
            user.set_password(password)
            user.save()
            user.groups.add(group)
            return HospitalStaff.objects.create(user=user, hospital=hospital)
    except IntegrityError:
        raise Duplicate("This username is taken.") from None
