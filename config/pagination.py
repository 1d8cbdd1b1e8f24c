from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """{count, next, previous, results}; clients may ask for up to 200 rows a page.

    A page number or size that is not a positive integer is invalid input (400);
    a page past the last one is not found (404); sizes over 200 are capped.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

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
