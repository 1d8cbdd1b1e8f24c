"""JSON bodies are bounded in depth and size (design §16): 400/413, never a 500."""

import logging

import pytest
from pytest_httpserver import HTTPServer

from integrations.clients import IntegrationError, PatientServiceClient
from tests.helpers import API, assert_json_error

DEEP_LIST = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
JUST_TOO_DEEP = "[" * 33 + "]" * 33  # one level past MAX_JSON_DEPTH


def _send(client, method, url, body):
    return client.generic(method, url, body, content_type="application/json")


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT, JUST_TOO_DEEP])
def test_deep_json_to_the_login_is_a_parse_error_without_a_traceback(db, anon_client, body, caplog):
    with caplog.at_level(logging.INFO):
        response = _send(anon_client, "POST", f"{API}/auth/token/", body)
    assert_json_error(response, 400, "parse_error")
    assert "nested more than 32 levels" in response.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT])
def test_deep_json_is_refused_on_every_verb(supervisor_client, paramedic, body):
    for method, url in (
        ("PATCH", f"{API}/paramedics/{paramedic.id}"),
        ("PUT", f"{API}/paramedics/{paramedic.id}"),
        ("POST", f"{API}/paramedics"),
        ("POST", f"{API}/tasks"),
        ("POST", f"{API}/auth/token/refresh/"),
    ):
        assert_json_error(_send(supervisor_client, method, url, body), 400, "parse_error")


def test_json_nested_as_deep_as_allowed_is_parsed(supervisor_client):
    body = '{"location": ' + "[" * 30 + "]" * 30 + "}"
    response = _send(supervisor_client, "POST", f"{API}/tasks", body)
    assert_json_error(response, 400, "invalid")  # parsed, then refused by validation


def test_a_body_over_the_limit_is_413_before_it_is_read(supervisor_client, settings):
    settings.JSON_MAX_BODY_BYTES = 1000
    body = '{"description": "' + "x" * 2000 + '"}'
    assert_json_error(
        _send(supervisor_client, "POST", f"{API}/tasks", body), 413, "request_too_large"
    )


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_parse_errors(supervisor_client, constant):
    body = '{"request_id": "r", "patient_id": "p", "priority": "urgent", "location": '
    body += '{"lat": ' + constant + ', "lon": 1}}'
    assert_json_error(_send(supervisor_client, "POST", f"{API}/tasks", body), 400, "parse_error")


def test_a_deep_answer_from_an_outside_service_is_a_retryable_error(httpserver: HTTPServer):
    httpserver.expect_request("/patients/p-1").respond_with_data(
        DEEP_LIST, content_type="application/json"
    )
    client = PatientServiceClient(base_url=httpserver.url_for("/"), token="t")
    with pytest.raises(IntegrationError, match="not acceptable JSON"):
        client.fetch_patient("p-1", idempotency_key="k")
