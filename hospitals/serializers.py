import re

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.fields import StrictCharField, StrictIntegerField
from paramedics.serializers import PointSerializer
from tasks.models import Capability

from .models import Hospital, HospitalStatus

# Text from outside is printable (design §16): no control characters in one-line fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise serializers.ValidationError("Control characters are not allowed.")
    return value


class HospitalSerializer(serializers.ModelSerializer):
    location = PointSerializer(read_only=True)
    capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Capability.choices), read_only=True
    )

    class Meta:
        model = Hospital
        fields = [
            "id",
            "code",
            "name",
            "address",
            "location",
            "capabilities",
            "status",
            "diversion_reason",
            "ed_beds_available",
            "updated_at",
        ]
        read_only_fields = fields


class HospitalWriteSerializer(serializers.Serializer):
    """A supervisor's hospital; `PATCH` by the hospital's own staff takes only
    `status`, `diversion_reason` and `ed_beds_available`."""

    code = StrictCharField(
        max_length=32, validators=[no_control_characters], help_text="Letters, digits, - and _."
    )
    name = StrictCharField(max_length=200, validators=[no_control_characters])
    address = StrictCharField(
        max_length=300, required=False, allow_blank=True, validators=[no_control_characters]
    )
    location = PointSerializer()
    capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Capability.choices),
        max_length=len(Capability.values),
        required=False,
    )
    status = serializers.ChoiceField(choices=HospitalStatus.choices, required=False)
    diversion_reason = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        validators=[no_control_characters],
        help_text="Why the hospital is on diversion; cleared when it opens again.",
    )
    ed_beds_available = StrictIntegerField(
        min_value=0, max_value=10_000, required=False, allow_null=True
    )

    def validate_code(self, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise serializers.ValidationError("Letters, digits, - and _ only.")
        return value


class HospitalStaffSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[no_control_characters])
    password = StrictCharField(max_length=128, write_only=True, style={"input_type": "password"})

    def validate_username(self, value: str) -> str:
        if not re.fullmatch(r"[\w.@+-]+", value):
            raise serializers.ValidationError("Letters, digits and @ . + - _ only.")
        return value

    def validate_password(self, value: str) -> str:
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class HospitalStaffCreatedSerializer(serializers.Serializer):
    username = serializers.CharField()
    hospital = serializers.UUIDField()


class DestinationSerializer(serializers.Serializer):
    hospital = HospitalSerializer()
    rank = serializers.IntegerField(help_text="1 is the best destination.")
    capable = serializers.BooleanField(help_text="Has what the call type's plan needs.")
    diversion = serializers.BooleanField()
    travel_seconds = serializers.IntegerField()
    travel_source = serializers.ChoiceField(choices=["estimate", "road"])
    eta = serializers.DateTimeField(help_text="When the crew would arrive, leaving now.")
    reasons = serializers.ListField(child=serializers.CharField())
