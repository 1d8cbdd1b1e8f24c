"""Shifts in and out of spreadsheets (CSV, XLSX) through django-import-export (design §14).

Columns: `id` (blank for a new shift), `station` (a station code), `starts_at`,
`ends_at` (ISO 8601; without an offset, UTC), `paramedics` (badge numbers separated
by `;`), `notes`. Each row is written through the roster services, so the same rules
hold as in the API: the period, the overlap rule (also between rows of one file:
earlier rows are in the transaction already), known stations and badges. The
import runs in one transaction: a file with any bad row creates nothing, and the
preview lists each row's errors.
"""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from import_export import fields, resources, widgets

from core.errors import ApplicationError

from .models import Paramedic, Shift, Station
from .services import check_no_overlap, shift_create, shift_update, validate_shift_period

BADGE_SEPARATOR = ";"


class StationCodeWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        code = str(value or "").strip()
        if not code:
            raise ValueError("A station code is required.")
        station = Station.objects.filter(code__iexact=code).first()
        if station is None:
            raise ValueError(f"No station has the code {code!r}.")
        return station

    def render(self, value, obj=None, **kwargs):
        return value.code if value else ""


class UtcDateTimeWidget(widgets.Widget):
    """ISO 8601 text (or a spreadsheet's date cell); a time without an offset is UTC."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime):
            parsed = value
        else:
            text = str(value or "").strip()
            if not text:
                raise ValueError("A date and time is required.")
            try:
                parsed = parse_datetime(text)
            except ValueError:
                parsed = None
            if parsed is None:
                raise ValueError(f"{text[:40]!r} is not a date and time (e.g. 2026-12-01 06:00).")
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("The date lies outside what UTC can hold.") from None

    def render(self, value, obj=None, **kwargs):
        return value.astimezone(UTC).isoformat() if value else ""


class BadgeListWidget(widgets.Widget):
    """`B-1;B-2` <-> paramedics; an unknown badge is an error, not silently dropped."""

    def clean(self, value, row=None, **kwargs):
        badges = [b.strip() for b in str(value or "").split(BADGE_SEPARATOR) if b.strip()]
        # Case-insensitive, as badges are unique that way.
        found = {
            p.badge_lower: p
            for p in Paramedic.objects.annotate(badge_lower=Lower("badge_number")).filter(
                badge_lower__in=[b.lower() for b in badges]
            )
        }
        missing = [b for b in badges if b.lower() not in found]
        if missing:
            raise ValueError("Unknown badge number(s): " + ", ".join(missing))
        return list(dict.fromkeys(found[b.lower()] for b in badges))

    def render(self, value, obj=None, **kwargs):
        return BADGE_SEPARATOR.join(p.badge_number for p in value or ())


class ShiftResource(resources.ModelResource):
    # Names the shift a row updates (blank: a new one); see get_instance.
    id = fields.Field(attribute="id", column_name="id", widget=widgets.Widget(), readonly=True)
    station = fields.Field(attribute="station", column_name="station", widget=StationCodeWidget())
    starts_at = fields.Field(
        attribute="starts_at", column_name="starts_at", widget=UtcDateTimeWidget()
    )
    ends_at = fields.Field(attribute="ends_at", column_name="ends_at", widget=UtcDateTimeWidget())
    # Imported into a plain attribute; the services write the assignments.
    paramedics = fields.Field(
        attribute="imported_paramedics", column_name="paramedics", widget=BadgeListWidget()
    )
    notes = fields.Field(attribute="notes", column_name="notes", widget=widgets.CharWidget())

    class Meta:
        model = Shift
        fields = ("id", "station", "starts_at", "ends_at", "paramedics", "notes")
        export_order = fields
        import_id_fields = ("id",)
        use_transactions = True
        skip_unchanged = False
        clean_model_instances = False

    def get_queryset(self):
        return Shift.objects.select_related("station").prefetch_related("paramedics")

    def dehydrate_paramedics(self, shift: Shift) -> str:
        return BADGE_SEPARATOR.join(p.badge_number for p in shift.paramedics.all())

    def get_instance(self, instance_loader, row):
        raw = str(row.get("id") or "").strip()
        if not raw:
            return None  # a new shift
        try:
            return Shift.objects.filter(pk=raw).first()
        except ValidationError:
            raise ValueError(f"{raw[:40]!r} is not a shift id.") from None

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        # Shown by column name: the badges were read into `imported_paramedics`.
        if "imported_paramedics" in errors:
            errors["paramedics"] = errors.pop("imported_paramedics")
        if "starts_at" not in errors and "ends_at" not in errors and instance.starts_at:
            try:
                validate_shift_period(instance.starts_at, instance.ends_at)
            except ApplicationError as exc:
                errors["ends_at"] = [exc.detail]
        people = getattr(instance, "imported_paramedics", None) or []
        if not errors and people:
            existing = Shift.objects.filter(pk=instance.pk).exists()
            try:
                check_no_overlap(
                    people,
                    instance.starts_at,
                    instance.ends_at,
                    exclude_shift=instance.pk if existing else None,
                )
            except ApplicationError as exc:
                errors["paramedics"] = [exc.detail]
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        fields_ = {
            "station": instance.station,
            "starts_at": instance.starts_at,
            "ends_at": instance.ends_at,
            "notes": instance.notes or "",
            "paramedics": getattr(instance, "imported_paramedics", None) or [],
        }
        try:
            if is_create:
                saved = shift_create(**fields_)
            else:
                saved = shift_update(shift=instance, changes=fields_)
        except ApplicationError as exc:
            raise ValidationError({"paramedics": [exc.detail]}) from None
        instance.pk = instance.id = saved.pk

    def save_m2m(self, instance, row, **kwargs):
        """The assignments were written by the service."""
