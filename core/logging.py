"""Structured logs with a request id (design §10, §8: no patient data in logs).

Every request gets an id (the caller's X-Request-ID if it looks like one, else a
new UUID), echoed in the response header and attached to every log line
written while the request runs. Lines are JSON in production, plain text in a
terminal (`make run`); either way a line is one line: JSON escapes control
characters itself, and the plain formatter escapes them (a path or header with a
newline or a terminal escape cannot forge a line or drive the terminal). A
last-line redaction filter removes bearer tokens and JWT-shaped strings from
messages.
"""

import contextvars
import json
import logging
import re
import uuid

from django.core.signals import request_finished

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Each pattern's `keep` group stays; the rest of the match becomes "[redacted]".
_SECRETS = (
    re.compile(r"(?P<keep>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT
    # Signed URLs: our download tokens, S3 presigned signatures and credentials.
    re.compile(
        r"(?P<keep>[?&](?:token|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)"
        r"[^&\s\"']+",
        re.IGNORECASE,
    ),
)


# C0 and C1 control characters, DEL, and Unicode's line and paragraph separators.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control_characters(text: str) -> str:
    """`text` with each control character written as its Python escape (`\\n`, `\\x1b`)."""
    return _CONTROL_CHARACTERS.sub(
        lambda match: match.group().encode("unicode_escape").decode("ascii"), text
    )


def _redact(match: re.Match) -> str:
    return (match.groupdict().get("keep") or "") + "[redacted]"


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs 4xx/5xx responses after the
        # middleware chain returns. request_finished clears it (see below).
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[self.header] = request_id
        return response


def _clear_request_id(**kwargs) -> None:
    request_id_var.set(None)


request_finished.connect(_clear_request_id, dispatch_uid="core.logging.clear_request_id")


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to every record and scrubs secrets from the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        message = record.getMessage()
        scrubbed = message
        for pattern in _SECRETS:
            scrubbed = pattern.sub(_redact, scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class PlainFormatter(logging.Formatter):
    """The `plain` format, with every control character in the line escaped.

    The message is built from client values (the access log's path, a header
    quoted in a warning), so the escaping applies to the whole formatted line,
    every field included. A traceback that follows keeps its own line breaks.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control_characters(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            # The exception type and where, not its message: it may quote data.
            entry["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["stack"] = self.formatStack(record.stack_info) if record.stack_info else None
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
