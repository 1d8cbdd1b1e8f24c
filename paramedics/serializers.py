import math
import uuid

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.fields import (
    StrictCharField,
    StrictEmailField,
    StrictFloatField,
    StrictIntegerField,
    StrictUUIDField,
    WholeObjectSerializer,
)

from .models import CertificationLevel, Paramedic, Shift, Station
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


# --- Rosters (DESIGN §14) ----------------------------------------------------------


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
