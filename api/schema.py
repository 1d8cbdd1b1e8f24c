"""OpenAPI: every operation documents the API's error shape (design §5)."""

from django.conf import settings
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission

from core.roles import is_supervisor


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable error code, e.g. `invalid`.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text=(
            "Field errors on 400 invalid input: {field: [{code, message}]}; a nested "
            "object's fields nest the same way, e.g. {location: {lat: [{code, message}]}}."
        ),
    )


# What each documented error status means here; its `code` values are listed.
ERROR_DESCRIPTIONS = {
    400: "Invalid input: `invalid` (field errors under `errors`), `parse_error`.",
    401: "Missing, expired or revoked token: `not_authenticated`, `token_not_valid`, "
    "`password_changed`, `user_inactive`.",
    403: "The caller's role may not do this: `permission_denied`, `field_not_editable`.",
    404: "Not found, not visible to the caller, or a page past the last one: `not_found`.",
    409: "Conflicts with the current state (see the operation's description for its codes).",
    413: "Too large: `request_too_large` (JSON body), `file_too_large` (upload).",
    415: "Unsupported content type or file type: `unsupported_media_type`.",
    422: "Well-formed but unprocessable (see the operation's description).",
    429: "Throttled: `throttled`; see Retry-After.",
    503: "A dependency is down (`database_unavailable`, `storage_unavailable`); retry "
    "after Retry-After with the same Idempotency-Key or request_id.",
}


def error_responses(*statuses: int) -> dict:
    """`extend_schema(responses=...)` entries for error statuses an operation adds to the
    ones every operation documents (ApiAutoSchema), e.g. 409 or 422."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in statuses
    }


class ApiAutoSchema(AutoSchema):
    """Documents the error responses every operation can give, from what it is.

    400 always (any parameter or body can be invalid); 401 and 403 where a token
    is required (401 also on the token endpoints); 404 for an object in the path
    or a page past the last; 413 and 415 where there is a request body; 429 where
    the view is throttled; 503 always (the database). Statuses an operation adds
    (409, 422) are declared on it with `error_responses`.
    """

    def _error_statuses(self) -> list[int]:
        statuses = [400]
        public = all(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            statuses += [401, 403]
        elif self.path.startswith("/api/v1/auth/"):
            statuses.append(401)
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            statuses.append(404)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses += [413, 415]
        if getattr(self.view, "throttle_classes", None):
            statuses.append(429)
        statuses.append(503)
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        if direction != "response" or not self.path.startswith("/api/v1"):
            return responses
        for status in self._error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(ErrorSerializer, str(status))
                responses[str(status)]["description"] = ERROR_DESCRIPTIONS[status]
        return dict(sorted(responses.items()))


class ParamedicJWTScheme(SimpleJWTScheme):
    """Document api.authentication.JWTAuthentication as the Bearer JWT it is."""

    target_class = "api.authentication.JWTAuthentication"


class CanReadApiDocs(BasePermission):
    """The schema and Swagger UI: public unless API_DOCS_PUBLIC is off, then supervisors."""

    def has_permission(self, request, view) -> bool:
        return settings.API_DOCS_PUBLIC or is_supervisor(request.user)


# OpenAPI links (operationId -> status -> {name: link}): how a response's ids feed the
# next call. Clients read them as documentation; schemathesis follows them in its
# stateful phase, so whole flows (intake, assign, start, complete) are exercised.
LINKS = {
    "create_paramedic": {
        "201": {
            "get_paramedic": ("get_paramedic", {"id": "$response.body#/id"}),
            "update_paramedic": ("update_paramedic", {"id": "$response.body#/id"}),
            "list_paramedic_tasks": (
                "list_paramedic_tasks",
                {"paramedic_id": "$response.body#/id"},
            ),
        }
    },
    "create_task": {
        status: {
            "get_task": ("get_task", {"id": "$response.body#/id"}),
            "list_task_candidates": ("list_task_candidates", {"id": "$response.body#/id"}),
            "assign_task": ("assign_task", {"id": "$response.body#/id"}),
            "cancel_task": ("cancel_task", {"id": "$response.body#/id"}),
        }
        for status in ("200", "201")
    },
    "assign_task": {
        "200": {
            "report_task_status": (
                "report_task_status",
                {"paramedic_id": "$response.body#/paramedic", "task_id": "$response.body#/id"},
            ),
            "get_paramedic": ("get_paramedic", {"id": "$response.body#/paramedic"}),
        }
    },
    "report_task_status": {
        "200": {"get_task": ("get_task", {"id": "$response.body#/id"})},
    },
    "upload_xray": {
        status: {"get_xray": ("get_xray", {"id": "$response.body#/id"})}
        for status in ("200", "201")
    },
    "create_xray_upload": {
        status: {
            "get_xray_upload": ("get_xray_upload", {"id": "$response.body#/id"}),
            "complete_xray_upload": ("complete_xray_upload", {"id": "$response.body#/id"}),
            "abort_xray_upload": ("abort_xray_upload", {"id": "$response.body#/id"}),
        }
        for status in ("200", "201")
    },
    "complete_xray_upload": {
        status: {"get_xray": ("get_xray", {"id": "$response.body#/id"})}
        for status in ("200", "201")
    },
}


def add_links(result, generator, request, public):
    """drf-spectacular postprocessing hook: attach LINKS to their responses."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for status, links in LINKS.get(operation.get("operationId"), {}).items():
                response = operation.get("responses", {}).get(status)
                if response is None:
                    continue
                response["links"] = {
                    name: {"operationId": target, "parameters": parameters}
                    for name, (target, parameters) in links.items()
                }
    return result
