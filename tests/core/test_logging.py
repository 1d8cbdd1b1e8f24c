"""Structured logs: a request id on every line, no secrets in any line."""

import json
import logging

from core.logging import JsonFormatter, RequestContextFilter


def test_every_response_carries_a_request_id(client, db):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32
    echoed = client.get("/healthz", HTTP_X_REQUEST_ID="trace-abc-12345")
    assert echoed["X-Request-ID"] == "trace-abc-12345"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert forged["X-Request-ID"] != "bad id\nwith newline"


def test_log_lines_are_json_with_the_request_id(supervisor_client, caplog, paramedic):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = supervisor_client.get(
            "/api/v1/paramedics/00000000-0000-0000-0000-000000000000",
            HTTP_X_REQUEST_ID="req-for-logs-1",
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404
    line = json.loads(records[-1])
    assert line["request_id"] == "req-for-logs-1"
    assert line["level"] == "WARNING"
    assert {"ts", "logger", "message"} <= line.keys()


def test_tokens_are_redacted_from_messages():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "auth header was %s", ("Bearer abc.def.ghi",), None
    )
    RequestContextFilter().filter(record)
    assert "abc.def" not in record.getMessage()
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"token {jwt}", None, None)
    RequestContextFilter().filter(record)
    assert jwt not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_signed_url_secrets_are_redacted_from_messages():
    message = (
        "GET /api/v1/xrays/1/file?token=abc.SECRET-1:xyz&x=1 "
        "https://s3/b/k?X-Amz-Credential=AKIA%2F20261201&X-Amz-Signature=deadbeefSECRET2"
    )
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, None, None)
    RequestContextFilter().filter(record)
    scrubbed = record.getMessage()
    assert "SECRET" not in scrubbed and "AKIA" not in scrubbed
    assert "?token=[redacted]&x=1" in scrubbed
    assert "X-Amz-Signature=[redacted]" in scrubbed


def test_the_access_log_has_the_path_without_its_query(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="paramedic.access"):
        client.get("/healthz?token=SECRET-TOKEN", REMOTE_ADDR="192.0.2.7")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "paramedic.access"]
    assert line.startswith("GET /healthz 200 ")
    assert line.endswith(" 192.0.2.7")
    assert "SECRET" not in line
