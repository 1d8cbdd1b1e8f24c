import django_filters

from api.filters import StrictFilterSet, UtcIsoDateTimeFilter

from .models import CertificationLevel, Paramedic, ParamedicStatus, Shift, ShiftAssignment


class ParamedicFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=ParamedicStatus.choices)
    certification_level = django_filters.ChoiceFilter(choices=CertificationLevel.choices)
    base_station = django_filters.CharFilter(
        field_name="base_station__code", lookup_expr="iexact", help_text="A station code."
    )

    class Meta:
        model = Paramedic
        fields = ["status", "certification_level", "base_station"]


class ShiftFilter(StrictFilterSet):
    station = django_filters.UUIDFilter(field_name="station_id", help_text="A station's id.")
    paramedic = django_filters.UUIDFilter(method="filter_paramedic", help_text="A paramedic's id.")
    starts_before = UtcIsoDateTimeFilter(
        field_name="starts_at", lookup_expr="lt", help_text="Shifts starting before this time."
    )
    ends_after = UtcIsoDateTimeFilter(
        field_name="ends_at",
        lookup_expr="gt",
        help_text="Shifts ending after this time; with starts_before: shifts that overlap "
        "the period.",
    )

    class Meta:
        model = Shift
        fields = ["station"]

    def filter_paramedic(self, queryset, name, value):
        # A subquery, not a join: one row per shift, whatever else is filtered.
        return queryset.filter(
            pk__in=ShiftAssignment.objects.filter(paramedic_id=value).values("shift_id")
        )
