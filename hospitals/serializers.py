import math
import re
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictUUIDField,
)
from paramedics.serializers import PointSerializer
from tasks.models import Capability

from .models import VITAL_RANGES, Acuity, Handoff, Hospital, HospitalStatus, Sex

MAX_TREATMENTS = 30

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


def _vital_field(name: str):
    low, high, unit = VITAL_RANGES[name]
    field = StrictFloatField if isinstance(low, float) else StrictIntegerField
    return field(min_value=low, max_value=high, required=False, allow_null=True, help_text=unit)


class VitalsSerializer(serializers.Serializer):
    bp_systolic = _vital_field("bp_systolic")
    bp_diastolic = _vital_field("bp_diastolic")
    pulse = _vital_field("pulse")
    resp_rate = _vital_field("resp_rate")
    spo2 = _vital_field("spo2")
    temperature_c = _vital_field("temperature_c")
    gcs = _vital_field("gcs")

    def validate(self, attrs):
        for name, value in attrs.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise serializers.ValidationError({name: "Must be a finite number."})
        systolic, diastolic = attrs.get("bp_systolic"), attrs.get("bp_diastolic")
        if (systolic is None) != (diastolic is None):
            raise serializers.ValidationError(
                {"bp_diastolic": "Blood pressure is both numbers or neither."}
            )
        if systolic is not None and diastolic >= systolic:
            raise serializers.ValidationError(
                {"bp_diastolic": "The diastolic pressure is below the systolic."}
            )
        return attrs


class HandoffSendSerializer(serializers.Serializer):
    hospital = StrictUUIDField()
    acuity = serializers.ChoiceField(choices=Acuity.choices)
    age_years = StrictIntegerField(min_value=0, max_value=120, help_text="Estimated.")
    sex = serializers.ChoiceField(choices=Sex.choices)
    chief_complaint = StrictCharField(max_length=200, validators=[no_control_characters])
    stable = StrictBooleanField()
    vitals = VitalsSerializer(required=False)
    treatments = serializers.ListField(
        child=StrictCharField(max_length=100, validators=[no_control_characters]),
        max_length=MAX_TREATMENTS,
        required=False,
    )
    eta = serializers.DateTimeField(
        required=False, help_text="Default: travel time from the scene (design §18)."
    )
    confirm_diversion = StrictBooleanField(
        required=False, default=False, help_text="Go to a hospital on diversion anyway."
    )

    def validate_eta(self, value):
        now = timezone.now()
        if not now - timedelta(hours=1) <= value <= now + timedelta(hours=12):
            raise serializers.ValidationError("Within the next 12 hours.")
        return value


class HandoffSerializer(serializers.ModelSerializer):
    hospital = serializers.UUIDField(source="hospital_id", read_only=True)
    hospital_code = serializers.CharField(source="hospital.code", read_only=True)
    task = serializers.UUIDField(source="task_id", read_only=True)
    paramedic = serializers.UUIDField(source="paramedic_id", read_only=True)
    vitals = VitalsSerializer(read_only=True)
    treatments = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Handoff
        fields = [
            "id",
            "task",
            "hospital",
            "hospital_code",
            "paramedic",
            "state",
            "acuity",
            "age_years",
            "sex",
            "chief_complaint",
            "stable",
            "vitals",
            "treatments",
            "eta",
            "diversion_confirmed",
            "sent_at",
            "acknowledged_at",
            "arrived_at",
            "offloaded_at",
            "ended_at",
        ]
        read_only_fields = fields
