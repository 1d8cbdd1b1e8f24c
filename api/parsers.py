"""The API's JSON parser: bounded in size and depth (design §16)."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.errors import ApplicationError
from core.payloads import JsonRefused, load_json


class RequestTooLarge(ApplicationError):
    status_code = 413
    code = "request_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, but a body over JSON_MAX_BODY_BYTES is 413 before it is read
    in full, and one nested too deeply is 400 `parse_error` (not a RecursionError)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.JSON_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"A JSON body may be at most {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return load_json(raw.decode(encoding))
        except (JsonRefused, UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
