import math

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.fields import (
    StrictCharField,
    StrictEmailField,
    StrictFloatField,
    WholeObjectSerializer,
)

from .models import CertificationLevel, Paramedic
from .services import SELECTABLE_STATUSES
from .validators import validate_badge_number, validate_e164_phone


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
    base_station = StrictCharField(max_length=100, required=False, allow_blank=True)
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
