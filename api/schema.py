"""OpenAPI: every operation documents the API's error shape (DESIGN §5)."""

from django.conf import settings
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
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


_DESCRIPTIONS = {
    "400": "Invalid input (`invalid`, `parse_error`).",
    "401": "Missing, expired or invalid token.",
    "403": "The caller's role may not do this.",
    "404": "Not found, not visible to the caller, or a page past the last one.",
    "405": "Method not allowed.",
    "409": "Conflict with the current state (`duplicate`, `invalid_transition`, ...).",
    "413": "Request body too large (`file_too_large`).",
    "415": "Unsupported content type (`unsupported_media_type`).",
    "429": "Throttled; see Retry-After.",
    "503": "A dependency is unavailable.",
}


class ApiAutoSchema(AutoSchema):
    """Adds the shared error responses that apply to each operation."""

    def _error_codes(self) -> list[str]:
        codes = ["400", "429"] if self.method in ("POST", "PUT", "PATCH") else ["400"]
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes += ["401", "403"]
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            codes.append("404")  # unknown object, or a page past the last one
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("409")
        codes += ["405", "415"]
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        if direction != "response" or not self.path.startswith("/api/v1"):
            return responses
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = _DESCRIPTIONS[code]
        return responses


class ParamedicJWTScheme(SimpleJWTScheme):
    """Document api.authentication.JWTAuthentication as the Bearer JWT it is."""

    target_class = "api.authentication.JWTAuthentication"


class CanReadApiDocs(BasePermission):
    """The schema and Swagger UI: public unless API_DOCS_PUBLIC is off, then supervisors."""

    def has_permission(self, request, view) -> bool:
        return settings.API_DOCS_PUBLIC or is_supervisor(request.user)
