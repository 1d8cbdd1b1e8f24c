from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from api.fields import QueryParamsSerializer, StrictCharField, StrictUUIDField
from paramedics.serializers import LocationSerializer

from .dispatch import Flag
from .models import (
    DEFAULT_CALL_TYPE,
    CallType,
    EmergencyTask,
    Milestone,
    TaskHistory,
    TaskPriority,
    TaskStatus,
)
from .selectors import may_see_patient_details
from .validators import validate_external_id


@extend_schema_field({"type": "object", "additionalProperties": True})
class PatientDetailsField(serializers.JSONField):
    """The Patient Service's JSON object, as it sent it (or null)."""


class TaskLocationSerializer(LocationSerializer):
    recorded_at = None  # a task's location is where the emergency is, not a fix


class TaskHistorySerializer(serializers.ModelSerializer):
    from_status = serializers.SerializerMethodField()
    milestone = serializers.SerializerMethodField()
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    at = serializers.DateTimeField(
        read_only=True,
        help_text="When it happened: the device's time where it reported one, else the server's.",
    )
    recorded_at = serializers.DateTimeField(
        read_only=True, help_text="When the server recorded it."
    )

    class Meta:
        model = TaskHistory
        fields = [
            "from_status",
            "to_status",
            "milestone",
            "actor",
            "paramedic",
            "at",
            "recorded_at",
            "note",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TaskStatus.choices, allow_null=True))
    def get_from_status(self, obj: TaskHistory) -> str | None:
        return obj.from_status or None

    @extend_schema_field(
        serializers.ChoiceField(
            choices=Milestone.choices,
            allow_null=True,
            help_text="The milestone this row records, if any.",
        )
    )
    def get_milestone(self, obj: TaskHistory) -> str | None:
        return obj.milestone or None


class TaskMilestonesSerializer(serializers.Serializer):
    """When each field milestone happened (device time); null until recorded."""

    acknowledged_at = serializers.DateTimeField(read_only=True, allow_null=True)
    en_route_at = serializers.DateTimeField(read_only=True, allow_null=True)
    on_scene_at = serializers.DateTimeField(read_only=True, allow_null=True)
    at_patient_at = serializers.DateTimeField(read_only=True, allow_null=True)
    transporting_at = serializers.DateTimeField(read_only=True, allow_null=True)
    at_destination_at = serializers.DateTimeField(read_only=True, allow_null=True)


class TaskSerializer(serializers.ModelSerializer):
    """A task; `patient_details` only for supervisors and the assigned paramedic."""

    call_type = serializers.CharField(
        source="call_type_id", read_only=True, help_text="The code of its call type."
    )
    target_minutes = serializers.IntegerField(
        read_only=True,
        help_text="Its response target (call to on scene), set by its call type's plan "
        "for its priority when it arrived.",
    )

    location = TaskLocationSerializer(read_only=True)
    milestones = TaskMilestonesSerializer(source="*", read_only=True)
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
            "call_type",
            "target_minutes",
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
            "milestones",
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


DEVICE_TIME_HELP = (
    "When it happened, by the device's clock (defaults to now): at most 2 minutes ahead "
    "of the server, at most 24 hours old, not before the task was assigned to this "
    "paramedic (less the same 2 minutes of clock skew, DEVICE_CLOCK_SKEW_SECONDS), not "
    "before the task's previous milestone (else 400 `invalid_time`)."
)


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
    priority = serializers.ChoiceField(
        choices=TaskPriority.choices,
        required=False,
        help_text="Required unless `call_type` is given; then it defaults to the call "
        "type's default priority.",
    )
    call_type = StrictCharField(
        max_length=32,
        required=False,
        help_text=f"The kind of call (design §18), e.g. `cardiac_arrest`; default "
        f"`{DEFAULT_CALL_TYPE}`. Its response plan sets the task's target and the "
        "certification dispatch prefers. An unknown code is 400 `unknown_call_type`.",
    )
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    address = StrictCharField(max_length=255, required=False, allow_blank=True)
    location = TaskLocationSerializer()

    def validate_call_type(self, value: str) -> CallType:
        call_type = CallType.objects.filter(code=value).first()
        if call_type is None:
            raise serializers.ValidationError(
                "No call type has this code.", code="unknown_call_type"
            )
        return call_type

    def validate(self, attrs):
        if "priority" not in attrs and "call_type" not in attrs:
            raise serializers.ValidationError(
                {"priority": [serializers.ErrorDetail("This field is required.", "required")]}
            )
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
    at = serializers.DateTimeField(required=False, help_text=DEVICE_TIME_HELP)
    note = StrictCharField(max_length=1000, required=False, allow_blank=True)


class TaskMilestoneSerializer(serializers.Serializer):
    milestone = serializers.ChoiceField(
        choices=Milestone.choices,
        help_text="In order, each at most once, any may be skipped: acknowledged (an "
        "assigned task), en_route (starts it), on_scene, at_patient, transporting, "
        "at_destination (a task in progress).",
    )
    at = serializers.DateTimeField(required=False, help_text=DEVICE_TIME_HELP)
    note = StrictCharField(max_length=1000, required=False, allow_blank=True)


class CandidatesQuerySerializer(QueryParamsSerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=50, default=10, help_text="How many candidates, 1 to 50."
    )


class CandidateSerializer(serializers.Serializer):
    """One ranked candidate (design §18): arrival, the plan's rules, and why."""

    rank = serializers.IntegerField()
    paramedic = serializers.UUIDField(source="paramedic.id")
    badge_number = serializers.CharField(source="paramedic.badge_number")
    name = serializers.CharField(source="paramedic.full_name")
    certification_level = serializers.CharField(source="paramedic.certification_level")
    base_station = serializers.CharField(source="paramedic.base_station_code")
    eta_seconds = serializers.IntegerField(
        min_value=0,
        help_text="Estimated arrival at the task, in seconds; for a stale location the "
        "pessimistic value it is ranked on.",
    )
    meets_target = serializers.BooleanField(
        help_text="Arrives within the task's `target_minutes` (its call type's plan)."
    )
    distance_km = serializers.FloatField(help_text="Great-circle distance from the task.")
    travel_source = serializers.ChoiceField(
        choices=[("estimate", "estimate"), ("road", "road")],
        help_text="`road`: pgRouting over the road graph (ROUTING=pgrouting); `estimate`: "
        "great-circle distance x ROUTING_DETOUR_FACTOR at the priority's speed (also "
        "the fallback off the graph, with a reason).",
    )
    location_age_s = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="Location older than STALE_LOCATION_MINUTES.")
    preferred_certification = serializers.BooleanField(
        allow_null=True,
        help_text="Has the certification the call type's plan asks for (or higher); null "
        "when the plan asks for none.",
    )
    off_shift = serializers.BooleanField(
        help_text="The paramedic has shifts, but none now: ranked after those on shift "
        "(design §14). False for paramedics the roster does not plan."
    )
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=Flag.choices),
        help_text="What a dispatcher should know: "
        + "; ".join(f"`{flag.value}`: {flag.label}" for flag in Flag)
        + ".",
    )
    reasons = serializers.ListField(child=serializers.CharField())
    recommendation = serializers.CharField(
        allow_null=True,
        help_text="Rank 1 only: whom the ranking recommends and why, in one line.",
    )


@extend_schema_serializer(many=False)  # the page itself, not a list to paginate
class ParamedicTaskPageSerializer(serializers.Serializer):
    """A page of a paramedic's tasks, and what left its list (design §17 catch-up)."""

    count = serializers.IntegerField(min_value=0)
    next = serializers.URLField(allow_null=True, read_only=True)
    previous = serializers.URLField(allow_null=True, read_only=True)
    results = TaskSerializer(many=True)
    removed = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="With `updated_after`: ids of tasks that left this paramedic's list since "
        "then (declined, reassigned, cancelled after it let go). Empty without it.",
    )
