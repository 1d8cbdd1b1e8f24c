from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.settings import api_settings


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC before it reaches a query.

    A time UTC cannot hold (year 1 at +14:00, year 9999 at -12:00) is invalid
    input here, instead of an OverflowError in the SQLite adapter or a DataError
    from PostgreSQL (which also refuses offsets past 15:59).
    """

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date and time between years 1 and 9999 in UTC."
    }

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise FormValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictFilterSet(django_filters.FilterSet):
    """A filter given with an empty value is invalid input, not "no filter".

    `?updated_after=` from a device that lost its timestamp should fail loudly
    rather than silently return everything.
    """

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.filters:
            if name in self.data and "" in self.data.getlist(name):
                self.form.add_error(name, "This filter needs a value.")
                valid = False
        return valid


class RejectUnknownQueryParams(BaseFilterBackend):
    """A query parameter the endpoint does not know is invalid input (400).

    A typo such as `?stauts=pending` would otherwise return every task as if it
    had filtered. Known: the filterset's filters, search and ordering where the
    view has them, the pagination parameters, and a view's `extra_query_params`.
    """

    def filter_queryset(self, request, queryset, view):
        allowed = set(getattr(view, "extra_query_params", ()))
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        if getattr(view, "search_fields", None):
            allowed.add(api_settings.SEARCH_PARAM)
        if getattr(view, "ordering_fields", None):
            allowed.add(api_settings.ORDERING_PARAM)
        paginator = getattr(view, "paginator", None)
        if paginator is not None:
            allowed |= {paginator.page_query_param, paginator.page_size_query_param}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ValidationError({name[:64]: ["Unknown query parameter."] for name in unknown})
        return queryset
