import django_filters

from api.filters import StrictFilterSet

from .models import CertificationLevel, Paramedic, ParamedicStatus


class ParamedicFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=ParamedicStatus.choices)
    certification_level = django_filters.ChoiceFilter(choices=CertificationLevel.choices)
    base_station = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Paramedic
        fields = ["status", "certification_level", "base_station"]
