"""One error format for the whole API: ``{"code", "detail", "errors"?}``.

Domain code raises :class:`core.errors.ApplicationError` subclasses; they, DRF's
exceptions and anything Django answers itself under ``/api/`` (unknown URLs,
500s, CSRF) are turned into the same JSON shape here and nowhere else.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DATABASE_DOWN, DATABASE_DOWN_DETAIL, ApplicationError, error_body

logger = logging.getLogger(__name__)


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "file_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


def _field_errors(detail) -> dict:
    """DRF's nested ValidationError detail -> {field: [{code, message}]}."""
    if isinstance(detail, dict):
        return {field: _field_list(value) for field, value in detail.items()}
    return {"non_field_errors": _field_list(detail)}


def _field_list(value):
    if isinstance(value, dict):
        return _field_errors(value)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            # A list of nested objects: keep their positions.
            return [_field_errors(v) for v in value]
        return [{"code": _code_of(v), "message": str(v)} for v in value]
    return [{"code": _code_of(value), "message": str(value)}]


def _code_of(message) -> str:
    # Django form errors (e.g. django-filter's) reach DRF without a code: `invalid`.
    return getattr(message, "code", None) or "invalid"


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error answers ``{code, detail, errors?}``."""
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(exc.code, exc.detail, exc.errors),
            status=exc.status_code,
        )
    if isinstance(exc, DATABASE_DOWN):
        # The database is down or restarting. The change may or may not have been
        # committed; retrying with the same request_id / Idempotency-Key is safe.
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        return Response(
            error_body("database_unavailable", DATABASE_DOWN_DETAIL),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # Unhandled: Django logs it; the middleware renders JSON 500.

    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "Invalid input.", _field_errors(exc.detail))
    else:
        # DRF's codes are stable and specific (not_authenticated, throttled, ...).
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        if isinstance(detail, dict):
            # simplejwt: {"detail", "code": "token_not_valid", "messages"}; keep its code.
            code = str(detail.get("code", code))
            detail = detail.get("detail", "Request failed.")
        elif isinstance(detail, list):
            detail = "; ".join(str(d) for d in detail)
        body = error_body(code, detail)
    response.data = body
    return response


class ApiJsonErrorMiddleware:
    """Under /api/, never answer an HTML error page.

    Django itself answers some errors before or after DRF runs (unknown URLs,
    unhandled exceptions, CSRF failures, oversized bodies); this converts any
    non-JSON error response under /api/ to the API's error format.
    """

    prefix = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def process_exception(self, request, exc):
        """Outside DRF (admin, console): a database outage is a 503, not a 500."""
        if not isinstance(exc, DATABASE_DOWN):
            return None
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        if request.path.startswith(self.prefix):
            response = JsonResponse(
                error_body("database_unavailable", DATABASE_DOWN_DETAIL), status=503
            )
        else:
            response = HttpResponse(
                "Service temporarily unavailable; retry shortly.",
                status=503,
                content_type="text/plain",
            )
        response["Retry-After"] = "5"
        return response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(self.prefix)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status_code = response.status_code
            code = _STATUS_CODES.get(status_code, "error")
            detail = {
                404: "Not found.",
                405: "Method not allowed.",
                500: "Internal server error.",
            }.get(status_code, response.reason_phrase)
            json_response = JsonResponse(error_body(code, detail), status=status_code)
            for header in ("Allow", "Retry-After"):
                if response.has_header(header):
                    json_response[header] = response[header]
            return json_response
        return response
