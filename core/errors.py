"""The domain's error family: a broken rule, with an HTTP status and a stable code.

Services raise these; api.errors turns them into the API's JSON error format in
one place, and the admin shows their `detail` as a message.
"""

from django.db import InterfaceError, OperationalError

HTTP_400_BAD_REQUEST = 400
HTTP_403_FORBIDDEN = 403
HTTP_404_NOT_FOUND = 404
HTTP_409_CONFLICT = 409
HTTP_503_SERVICE_UNAVAILABLE = 503


class ApplicationError(Exception):
    """A domain rule was broken; carries the HTTP status and a stable code."""

    status_code = HTTP_400_BAD_REQUEST
    code = "invalid"
    default_detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, code: str | None = None, errors=None):
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        self.errors = errors
        super().__init__(self.detail)


def error_body(code: str, detail: str, errors=None) -> dict:
    """The API's error body: `{code, detail, errors?}` (api.errors answers with it)."""
    body = {"code": code, "detail": str(detail)}
    if errors:
        body["errors"] = errors
    return body


def field_error(field: str, code: str, message: str) -> dict:
    """`errors` for one field's one problem: {field: [{code, message}]}."""
    return {field: [{"code": code, "message": message}]}


class Conflict(ApplicationError):
    status_code = HTTP_409_CONFLICT
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_detail = "This status change is not allowed."


class Duplicate(Conflict):
    code = "duplicate"
    default_detail = "A record with these values already exists."


class IdempotencyKeyReused(ApplicationError):
    status_code = 422
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for a different request."


class Forbidden(ApplicationError):
    status_code = HTTP_403_FORBIDDEN
    code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFound(ApplicationError):
    status_code = HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "Not found."


class ServiceUnavailable(ApplicationError):
    status_code = HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    default_detail = "A dependency is unavailable; try again shortly."


# Connection-level failures: the database is unreachable, not the query wrong.
DATABASE_DOWN = (OperationalError, InterfaceError)
DATABASE_DOWN_DETAIL = "The database is unavailable; retry shortly."
