from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import QueryParamsSerializer, StrictCharField, StrictUUIDField
from paramedics.serializers import LocationSerializer

from .models import EmergencyTask, TaskHistory, TaskPriority, TaskStatus
from .selectors import may_see_patient_details
from .validators import validate_external_id


@extend_schema_field({"type": "object", "additionalProperties": True})
class PatientDetailsField(serializers.JSONField):
    """The Patient Service's JSON object, as it sent it (or null)."""


class TaskLocationSerializer(LocationSerializer):
    recorded_at = None  # a task's location is where the emergency is, not a fix


class TaskHistorySerializer(serializers.ModelSerializer):
    from_status = serializers.SerializerMethodField()
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TaskHistory
        fields = ["from_status", "to_status", "actor", "paramedic", "at", "note"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TaskStatus.choices, allow_null=True))
    def get_from_status(self, obj: TaskHistory) -> str | None:
        return obj.from_status or None


class TaskSerializer(serializers.ModelSerializer):
    """A task; `patient_details` only for supervisors and the assigned paramedic."""

    location = TaskLocationSerializer(read_only=True)
    patient_details = PatientDetailsField(
        read_only=True,
        allow_null=True,
        help_text="From the Patient Service. Null for everyone but supervisors and the "
        "assigned paramedic, and null until fetched.",
    )

    class Meta:
        model = EmergencyTask
        fields = [
            "id",
            "request_id",
            "patient_id",
            "consultation_id",
            "priority",
            "description",
            "address",
            "location",
            "status",
            "paramedic",
            "created_at",
            "updated_at",
            "assigned_at",
            "started_at",
            "completed_at",
            "cancelled_at",
            "patient_details",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not may_see_patient_details(request.user, instance):
            data["patient_details"] = None
        return data


class TaskDetailSerializer(TaskSerializer):
    history = TaskHistorySerializer(many=True, read_only=True)

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "history"]
        read_only_fields = fields


class TaskCreateSerializer(serializers.Serializer):
    request_id = StrictCharField(
        max_length=100,
        validators=[validate_external_id],
        help_text=(
            "The caller's unique id for this request; retries reuse it. Letters, digits, "
            "'.', '_', ':' and '-', starting with a letter or digit."
        ),
    )
    patient_id = StrictCharField(
        max_length=64,
        validators=[validate_external_id],
        help_text="The Patient Service's id of the patient (same characters as request_id).",
    )
    consultation_id = StrictCharField(max_length=64, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=TaskPriority.choices)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    address = StrictCharField(max_length=255, required=False, allow_blank=True)
    location = TaskLocationSerializer()

    def validate(self, attrs):
        location = attrs.pop("location")
        return {**attrs, "lat": location["lat"], "lon": location["lon"]}


class TaskAssignSerializer(serializers.Serializer):
    paramedic = StrictUUIDField(
        required=False, help_text="Omit to assign the top candidate (see /candidates)."
    )
    note = StrictCharField(max_length=1000, required=False, allow_blank=True)


class TaskCancelSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=1000)


class TaskStatusUpdateSerializer(serializers.Serializer):
    # Only the moves a paramedic reports (tasks.services.FIELD_MOVES); the rest is 400.
    status = serializers.ChoiceField(
        choices=[
            (TaskStatus.IN_PROGRESS.value, "start"),
            (TaskStatus.COMPLETED.value, "complete"),
            (TaskStatus.PENDING.value, "decline"),
        ],
        help_text="in_progress (start an assigned task), completed (complete a started "
        "one), or pending (decline an assigned one: it returns to dispatch).",
    )
    note = StrictCharField(max_length=1000, required=False, allow_blank=True)


class CandidatesQuerySerializer(QueryParamsSerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=50, default=10, help_text="How many candidates, 1 to 50."
    )


class CandidateSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    paramedic = serializers.UUIDField(source="paramedic.id")
    badge_number = serializers.CharField(source="paramedic.badge_number")
    name = serializers.CharField(source="paramedic.full_name")
    certification_level = serializers.CharField(source="paramedic.certification_level")
    base_station = serializers.CharField(source="paramedic.base_station")
    distance_km = serializers.FloatField()
    location_age_s = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="Location older than STALE_LOCATION_MINUTES.")
    preferred_certification = serializers.BooleanField(
        allow_null=True, help_text="For critical tasks: paramedic or critical_care."
    )
    reasons = serializers.ListField(child=serializers.CharField())
