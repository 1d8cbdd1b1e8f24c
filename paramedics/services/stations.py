"""Stations (design §14): a code (unique in any case), a name, an address, a location and
the staff it needs. Paramedics refer to their station by code."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, Duplicate, field_error

from ..models import Paramedic, Station


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
            errors=field_error("base_station", "unknown_station", "No station has this code."),
        )
    return found


def ensure_station_code_free(code: str, *, exclude_pk=None) -> None:
    """409 `duplicate` (field `code`) if another station has this code, in any case."""
    if Station.objects.exclude(pk=exclude_pk).filter(code__iexact=code).exists():
        raise Duplicate(
            "A station with this code already exists.",
            errors=field_error("code", "duplicate_code", "This station code is taken."),
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
    ensure_station_code_free(code)
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
        ensure_station_code_free(changes["code"], exclude_pk=locked.pk)
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
