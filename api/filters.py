from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
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
        backends = tuple(getattr(view, "filter_backends", ()))
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None and _uses(backends, DjangoFilterBackend):
            allowed |= set(filterset_class.base_filters)
        if getattr(view, "search_fields", None) and _uses(backends, filters.SearchFilter):
            allowed.add(api_settings.SEARCH_PARAM)
        if getattr(view, "ordering_fields", None) and _uses(backends, filters.OrderingFilter):
            allowed.add(api_settings.ORDERING_PARAM)
        paginator = getattr(view, "paginator", None)
        if paginator is not None:
            allowed |= {paginator.page_query_param, paginator.page_size_query_param}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ValidationError({name[:64]: ["Unknown query parameter."] for name in unknown})
        return queryset


def _uses(backends, kind) -> bool:
    return any(issubclass(backend, kind) for backend in backends)


class SearchFilter(filters.SearchFilter):
    """`?search=` on views that name `search_fields`; documented only there."""

    def get_schema_operation_parameters(self, view):
        if not getattr(view, "search_fields", None):
            return []
        return super().get_schema_operation_parameters(view)


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=<field>` or `-<field>` on views that name `ordering_fields`; documented
    only there, with the values it accepts. Any other value is invalid input (DRF
    would ignore it and return the default order as if it had sorted)."""

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get(self.ordering_param)
        if value is None:
            return self.get_default_ordering(view)
        fields = getattr(view, "ordering_fields", None) or ()
        accepted = {f"{sign}{name}" for name in fields for sign in ("", "-")}
        if value not in accepted:
            raise ValidationError(
                {self.ordering_param: [f"One of: {', '.join(sorted(accepted))}."]}
            )
        return [value]

    def get_schema_operation_parameters(self, view):
        fields = getattr(view, "ordering_fields", None)
        if not fields:
            return []
        (parameter,) = super().get_schema_operation_parameters(view)
        choices = [f"{sign}{name}" for name in fields for sign in ("", "-")]
        return [{**parameter, "schema": {"type": "string", "enum": choices}}]
