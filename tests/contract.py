"""Every API response the suite produces is checked against the served OpenAPI schema.

Loaded as a pytest plugin by tests/conftest.py. Django's test client (which DRF's
APIClient builds on) is wrapped for the whole session: each response to a request
under /api/v1/ is validated with openapi-core against the schema /api/schema/
serves (status code documented, content type, body shape, headers). A new endpoint
or a changed response that the schema does not describe fails the test that
produced it, wherever that test is.

Every error response's `code` must be in the registry of error codes
(core.error_codes) with that status, and each field error's code too: a code the
API returns but the docs do not list fails the test that produced it.

Not checked: responses of a test's own URLconf (pytest.mark.urls), 500s (never part
of the contract; tests that provoke one assert it themselves).
"""

import functools
import json

import pytest
from django.conf import settings
from django.test.client import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.validation.response.exceptions import InvalidData
from werkzeug.datastructures import Headers, ImmutableMultiDict

from core.error_codes import API_ERRORS, FIELD_ERRORS

API_PREFIX = "/api/v1/"
PROJECT_URLCONF = "config.urls"


@functools.cache
def served_schema() -> dict:
    """The schema exactly as /api/schema/?format=json renders it."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


# JSON under media types openapi-core does not know by name (the FHIR Bundle, design §21).
_JSON_MEDIA_TYPES = {"application/fhir+json": json.loads}


@functools.cache
def _openapi() -> OpenAPI:
    config = Config(extra_media_type_deserializers=_JSON_MEDIA_TYPES)
    return OpenAPI.from_dict(served_schema(), config=config)


class ContractRequest:
    """openapi-core's view of the Django request (path with its trailing slash, as in
    the schema: the API answers with or without it)."""

    def __init__(self, request):
        self.host_url = request._current_scheme_host
        self.path = request.path if request.path.endswith("/") else request.path + "/"
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.GET.lists())),
            header=Headers(request.headers.items()),
            cookie=ImmutableMultiDict(request.COOKIES),
        )
        self.content_type = request.content_type or ""
        self.body = b""


class ContractResponse:
    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = Headers(response.headers.items())
        self.content_type = response.get("Content-Type", "")
        if getattr(response, "streaming", False):
            # Event streams end under the test client (no ASGI server: the replay,
            # then closed), so they are read like any other streamed body.
            body = b"".join(response)
            response.streaming_content = [body]  # the test may still read it
            self.data = body
        else:
            self.data = response.content


class ContractViolation(AssertionError):
    pass


def check_response(response) -> None:
    request = getattr(response, "wsgi_request", None)
    if request is None or not request.path.startswith(API_PREFIX):
        return
    if settings.ROOT_URLCONF != PROJECT_URLCONF or response.status_code == 500:
        return
    openapi = _openapi()  # an invalid schema fails here, with the validator's reason
    try:
        openapi.validate_response(ContractRequest(request), ContractResponse(response))
    except (PathNotFound, OperationNotFound) as exc:
        if response.status_code in (400, 401, 403, 404, 405):
            # Refused before any operation was chosen (a route or method that does not
            # exist, or a request the guards turn away at the door): nothing to document.
            return
        raise ContractViolation(
            f"{request.method} {request.path} answered {response.status_code} but the "
            f"schema has no such operation ({exc})"
        ) from None
    except InvalidData as exc:
        if _is_json(response):
            raise ContractViolation(_violation(request, response, exc)) from None
        # A file (an X-ray): its status and media type are checked, its bytes are data.
    except Exception as exc:  # openapi-core's other validation errors
        raise ContractViolation(_violation(request, response, exc)) from None
    if response.status_code >= 400 and _is_json(response):
        _check_error_codes(request, response)


def _check_error_codes(request, response) -> None:
    body = json.loads(ContractResponse(response).data)
    registered = API_ERRORS.get(body.get("code"))
    if registered is None or registered.status != response.status_code:
        raise ContractViolation(
            f"{request.method} {request.path} answered {response.status_code} with code "
            f"{body.get('code')!r}, which core/error_codes.py does not list with that status"
        )
    unknown = sorted(set(_field_codes(body.get("errors"))) - FIELD_ERRORS.keys())
    if unknown:
        raise ContractViolation(
            f"{request.method} {request.path} answered field error codes {unknown} that "
            "core/error_codes.py does not list"
        )


def _field_codes(errors):
    """Every field error's code in an `errors` tree (nested objects and lists)."""
    if isinstance(errors, dict):
        for value in errors.values():
            yield from _field_codes(value)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict) and {"code", "message"} <= item.keys():
                yield item["code"]
            else:
                yield from _field_codes(item)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


def _violation(request, response, exc: Exception) -> str:
    return (
        f"{request.method} {request.path} -> {response.status_code} does not match the "
        f"schema: {exc.__class__.__name__}: {_explain(exc)}\n"
        f"body: {ContractResponse(response).data[:500]!r}"
    )


def _explain(exc: BaseException) -> str:
    """The JSON Schema errors behind an openapi-core error, each with where it is."""
    while exc is not None:
        errors = getattr(exc, "schema_errors", None)
        if errors:
            return "; ".join(
                f"at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:200]}"
                for e in errors
            )
        exc = exc.__cause__ or exc.__context__
    return "(no detail)"


@pytest.fixture(autouse=True, scope="session")
def _validate_every_api_response():
    original = Client.request

    def request(self, **environ):
        response = original(self, **environ)
        check_response(response)
        return response

    Client.request = request
    yield
    Client.request = original
