import math
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from api.fields import (
    StrictCharField,
    StrictEmailField,
    StrictFloatField,
    StrictIntegerField,
    StrictUUIDField,
    WholeObjectSerializer,
)

from .models import CertificationLevel, LocationFix, Paramedic, Shift, Station
from .services import SELECTABLE_STATUSES
from .validators import validate_badge_number, validate_e164_phone, validate_station_code

BASE_STATION_HELP = "The code of the paramedic's station (GET/POST /stations); '' for none."


class LocationSerializer(WholeObjectSerializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lon = StrictFloatField(min_value=-180, max_value=180)
    recorded_at = serializers.DateTimeField(
        required=False, help_text="When the fix was taken; defaults to now."
    )

    def validate(self, attrs):
        for axis in ("lat", "lon"):
            if not math.isfinite(attrs[axis]):
                raise serializers.ValidationError({axis: "Must be a finite number."})
        return attrs


class ParamedicSerializer(serializers.ModelSerializer):
    """What clients read."""

    last_location = LocationSerializer(read_only=True, allow_null=True)
    base_station = serializers.CharField(
        source="base_station_code", read_only=True, help_text=BASE_STATION_HELP
    )

    class Meta:
        model = Paramedic
        fields = [
            "id",
            "badge_number",
            "first_name",
            "last_name",
            "email",
            "phone",
            "certification_level",
            "status",
            "base_station",
            "last_location",
            "current_task",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ParamedicWriteSerializer(serializers.Serializer):
    """What supervisors send to create or update a profile (validation only).

    Uniqueness is decided by the service under the database's constraints.
    """

    badge_number = StrictCharField(max_length=32, validators=[validate_badge_number])
    first_name = StrictCharField(max_length=100)
    last_name = StrictCharField(max_length=100)
    email = StrictEmailField(max_length=254)
    phone = StrictCharField(
        max_length=16, required=False, allow_blank=True, validators=[validate_e164_phone]
    )
    certification_level = serializers.ChoiceField(choices=CertificationLevel.choices)
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in SELECTABLE_STATUSES],
        required=False,
        help_text="on_task is set only by the task state machine.",
    )
    base_station = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text=BASE_STATION_HELP + " An unknown code is 400 `unknown_station`.",
    )
    last_location = LocationSerializer(required=False, allow_null=True)
    password = StrictCharField(
        write_only=True,
        max_length=128,
        required=False,
        style={"input_type": "password"},
        help_text="Optional; without it the paramedic cannot log in until one is set.",
    )

    def validate_email(self, value: str) -> str:
        return value.strip().lower()

    def validate_password(self, value: str) -> str:
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class ParamedicSelfUpdateSerializer(serializers.Serializer):
    """The fields a paramedic may change on its own profile."""

    phone = StrictCharField(
        max_length=16, required=False, allow_blank=True, validators=[validate_e164_phone]
    )
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in SELECTABLE_STATUSES], required=False
    )
    last_location = LocationSerializer(required=False, allow_null=True)


# --- Rosters (design §14) ----------------------------------------------------------


class PointSerializer(WholeObjectSerializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lon = StrictFloatField(min_value=-180, max_value=180)

    def validate(self, attrs):
        for axis in ("lat", "lon"):
            if not math.isfinite(attrs[axis]):
                raise serializers.ValidationError({axis: "Must be a finite number."})
        return attrs


class StationSerializer(serializers.ModelSerializer):
    location = PointSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Station
        fields = [
            "id",
            "code",
            "name",
            "address",
            "location",
            "min_staff",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class StationWriteSerializer(serializers.Serializer):
    code = StrictCharField(
        max_length=100,
        validators=[validate_station_code],
        trim_whitespace=False,
        help_text="Unique, case-insensitively; paramedics' base_station names it.",
    )
    name = StrictCharField(max_length=200)
    address = StrictCharField(max_length=300, required=False, allow_blank=True)
    location = PointSerializer(required=False, allow_null=True)
    min_staff = StrictIntegerField(
        min_value=0,
        max_value=1000,
        required=False,
        help_text="Paramedics the station needs on shift at every hour (default 1).",
    )


class ShiftSerializer(serializers.ModelSerializer):
    station = serializers.UUIDField(source="station_id", read_only=True)
    station_code = serializers.CharField(source="station.code", read_only=True)
    paramedics = serializers.SerializerMethodField()

    class Meta:
        model = Shift
        fields = [
            "id",
            "station",
            "station_code",
            "starts_at",
            "ends_at",
            "paramedics",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_paramedics(self, shift: Shift) -> list[uuid.UUID]:
        # From the prefetched assignments (paramedics.selectors.shifts_with_people).
        return [assignment.paramedic_id for assignment in shift.assignments.all()]


class ShiftWriteSerializer(serializers.Serializer):
    station = StrictUUIDField(help_text="The station's id.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(
        help_text=f"After starts_at, at most {Shift.MAX_LENGTH_HOURS} hours later."
    )
    paramedics = serializers.ListField(
        child=StrictUUIDField(),
        max_length=200,
        required=False,
        help_text="Ids of the paramedics on this shift (replaces the list on update). "
        "One already on an overlapping shift: 409 `shift_overlap`.",
    )
    notes = StrictCharField(max_length=2000, required=False, allow_blank=True)


# --- Location trails (design §20) ---------------------------------------------------

FIX_TIME_HELP = (
    "The device's time of the fix (design §17's bounds: at most 2 minutes ahead of the "
    "service's clock, DEVICE_CLOCK_SKEW_SECONDS, and at most 24 hours back; else the "
    "batch is 400 `invalid_time`, each bad fix named by its position). A paramedic's "
    "fixes are keyed by it: a fix sent again is stored once."
)


class FixSerializer(WholeObjectSerializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lon = StrictFloatField(min_value=-180, max_value=180)
    at = serializers.DateTimeField(help_text=FIX_TIME_HELP)
    accuracy_m = StrictFloatField(
        min_value=0, max_value=100_000, required=False, allow_null=True,
        help_text="Horizontal accuracy in metres (radius, 68%).",
    )  # fmt: skip
    speed_mps = StrictFloatField(
        min_value=0, max_value=1_000, required=False, allow_null=True,
        help_text="Ground speed in metres per second.",
    )  # fmt: skip
    heading_deg = StrictFloatField(
        min_value=0, max_value=360, required=False, allow_null=True,
        help_text="Direction of travel in degrees clockwise from true north.",
    )  # fmt: skip

    def validate(self, attrs):
        for name, value in attrs.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise serializers.ValidationError({name: "Must be a finite number."})
        return attrs


class LocationBatchSerializer(serializers.Serializer):
    fixes = FixSerializer(
        many=True,
        allow_empty=False,
        help_text="The fixes, in any order; at most LOCATION_BATCH_MAX (120) in one batch.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read when the request is, so the setting holds without a restart of imports;
        # the list's length is checked before any fix is.
        self.fields["fixes"].max_length = settings.LOCATION_BATCH_MAX


class TrailReceiptSerializer(serializers.Serializer):
    received = serializers.IntegerField(
        help_text="Fixes in the batch: each is stored now or was before (a device may "
        "forget them all)."
    )
    newest_at = serializers.DateTimeField(
        help_text="The batch's newest fix; it is the paramedic's last_location unless a "
        "newer one was already stored."
    )


class LocationFixSerializer(serializers.ModelSerializer):
    class Meta:
        model = LocationFix
        fields = ["at", "lat", "lon", "accuracy_m", "speed_mps", "heading_deg", "received_at"]
        read_only_fields = fields


class LocationWindowSerializer(serializers.Serializer):
    """`?since=&until=` of a trail: a bounded window, so one read never scans a month."""

    since = serializers.DateTimeField(
        required=False, help_text="From this time (inclusive); default: an hour before until."
    )
    until = serializers.DateTimeField(
        required=False, help_text="To this time (exclusive); default: now."
    )

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - timedelta(hours=1)
        if until <= since:
            raise serializers.ValidationError(
                {"until": [ErrorDetail("until must be after since.", code="invalid_window")]}
            )
        if until - since > timedelta(hours=settings.LOCATION_WINDOW_MAX_HOURS):
            raise serializers.ValidationError(
                {
                    "until": [
                        ErrorDetail(
                            f"The window spans at most {settings.LOCATION_WINDOW_MAX_HOURS} "
                            "hours (LOCATION_WINDOW_MAX_HOURS).",
                            code="invalid_window",
                        )
                    ]
                }
            )
        return {"since": since, "until": until}
