from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class ShortPageCountPaginator(Paginator):
    """Reads the first page once, and skips the COUNT(*) when it is not full.

    The first page's rows are fetched (one more, to tell whether it is full)
    before counting: a short first page is its own count, so a paramedic polling
    its few active tasks costs one query instead of two, and a full one is not
    read a second time.
    """

    @cached_property
    def count(self):
        first = list(self.object_list[: self.per_page + 1])
        self._first_page_rows = first[: self.per_page]
        if len(first) <= self.per_page:
            return len(first)
        return super().count

    def page(self, number):
        number = self.validate_number(number)
        rows = getattr(self, "_first_page_rows", None)
        if number == 1 and rows is not None:
            return self._get_page(rows, number, self)
        return super().page(number)


class StandardPagination(PageNumberPagination):
    """{count, next, previous, results}; clients may ask for up to 200 rows a page.

    A page number or size that is not a positive integer is invalid input (400);
    a page past the last one is not found (404); sizes over 200 are capped.
    """

    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = "Rows per page, 1 to 200 (larger sizes are capped)."
    max_page_size = 200
    django_paginator_class = ShortPageCountPaginator

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if (
            raw is not None
            and raw not in self.last_page_strings
            and (not raw.isdigit() or int(raw) < 1 or len(raw) > 9)
        ):
            raise ValidationError({self.page_query_param: ["A page number is a positive integer."]})
        size = request.query_params.get(self.page_size_query_param)
        if size is not None and (not size.isdigit() or int(size) < 1 or len(size) > 9):
            raise ValidationError(
                {self.page_size_query_param: ["A page size is a positive integer (up to 200)."]}
            )
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response_schema(self, schema):
        """{count, next, previous, results}, with next/previous null on the last/first
        page (in OpenAPI 3.1 terms: DRF's own schema says `nullable`, which 3.1 ignores)."""
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "example": 123},
                "next": {**link, "example": "https://paramedic.example.org/api/v1/tasks/?page=2"},
                "previous": link,
                "results": schema,
            },
        }
