"""Conditional GET (design §12): an ETag from a version the writes already keep.

The validator is computed from a narrow query (a row's `updated_at`, or an
aggregate over a list's rows) through the same scoped queryset as the full
response, so a matching `If-None-Match` answers 304 after the same
authorization and without building the body. What the body depends on beyond
the rows (the caller's view of them, the query string) goes into the tag.
"""

import hashlib
import uuid

from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.response import Response

# Private data: a shared cache must not keep it; a client keeps it and asks again.
CACHE_CONTROL = "private, no-cache"


# For extend_schema: the request header, the response header, the 304 answer.
CONDITIONAL_PARAMETERS = [
    OpenApiParameter(
        "If-None-Match",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="The ETag of the copy the client holds: 304 with no body if current.",
    ),
    OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 304],
        description="A validator of this response as the caller sees it.",
    ),
]
NOT_MODIFIED = {304: OpenApiResponse(description="Not modified: the client's copy is current.")}


def retrieve_with_etag(view, request, *, narrow, fields: tuple[str, ...], etag) -> Response:
    """A GET of one object with its ETag. With If-None-Match, first one narrow read of
    `narrow` (the caller's scoped queryset, without prefetches): a match answers 304.
    Otherwise the usual get_object() (its 404s included) and the serializer's body."""
    if request.headers.get("If-None-Match"):
        pk = _uuid_or_none(view.kwargs[view.lookup_url_kwarg or view.lookup_field])
        current = narrow.filter(pk=pk).only("pk", *fields).first()
        if current is not None:
            unchanged = not_modified(request, etag(request.user, current))
            if unchanged is not None:
                return unchanged
    instance = view.get_object()
    return tagged(Response(view.get_serializer(instance).data), etag(request.user, instance))


def _uuid_or_none(value) -> uuid.UUID | None:
    """A URL's id for the narrow read (not an id: no row, the full path answers 404)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def make_etag(*parts) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def not_modified(request, etag: str) -> Response | None:
    """The 304 answer if the client's copy is current, else None."""
    header = request.headers.get("If-None-Match")
    if not header:
        return None
    # Weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter for GET.
    tags = {tag.removeprefix("W/") for tag in parse_etags(header)}
    if etag not in tags and "*" not in tags:
        return None
    response = Response(status=status.HTTP_304_NOT_MODIFIED)
    return tagged(response, etag)


def tagged(response, etag: str):
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response
