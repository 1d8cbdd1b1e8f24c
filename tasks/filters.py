import django_filters

from api.filters import StrictFilterSet, UtcIsoDateTimeFilter

from .models import EmergencyTask, TaskPriority, TaskStatus


class TaskFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=TaskStatus.choices, help_text="Repeat to match several: ?status=a&status=b"
    )
    priority = django_filters.MultipleChoiceFilter(choices=TaskPriority.choices)
    paramedic = django_filters.UUIDFilter(field_name="paramedic_id")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcIsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text=(
            "Tasks changed at or after this time, for devices catching up after a dead "
            "zone; inclusive, so pass the newest updated_at seen and ignore repeats."
        ),
    )

    class Meta:
        model = EmergencyTask
        fields = ["status", "priority", "paramedic"]


class ParamedicTaskFilter(StrictFilterSet):
    status = TaskFilter.base_filters["status"]
    updated_after = TaskFilter.base_filters["updated_after"]

    class Meta:
        model = EmergencyTask
        fields = ["status"]
