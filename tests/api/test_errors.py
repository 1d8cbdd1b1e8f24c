"""One error format for the whole API: {code, detail, errors?}, never HTML."""

import pytest
from rest_framework.test import APIClient

from tests.helpers import assert_json_error


def test_it_answers_malformed_json_with_parse_error(supervisor_client):
    response = supervisor_client.generic(
        "POST", "/api/v1/paramedics", '{"badge_number": ', content_type="application/json"
    )
    assert_json_error(response, 400, "parse_error")


def test_it_answers_non_object_json_with_invalid(supervisor_client):
    response = supervisor_client.post("/api/v1/paramedics", [1, 2], format="json")
    body = assert_json_error(response, 400, "invalid")
    assert "non_field_errors" in body["errors"]


def test_it_answers_unsupported_content_type(supervisor_client):
    response = supervisor_client.generic(
        "POST", "/api/v1/paramedics", "a=b", content_type="text/plain"
    )
    assert_json_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/paramedics/a/b/c", "/api/x"])
def test_it_answers_unknown_api_urls_with_json_404(supervisor_client, path):
    assert_json_error(supervisor_client.get(path), 404, "not_found")


def test_it_answers_wrong_method_with_json_405(supervisor_client):
    response = supervisor_client.delete("/api/v1/paramedics")
    assert_json_error(response, 405, "method_not_allowed")


def test_it_answers_bad_token_with_token_not_valid(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert_json_error(client.get("/api/v1/paramedics"), 401, "token_not_valid")


@pytest.mark.urls("tests.api.urls_faulty")
@pytest.mark.parametrize("path", ["/api/v1/boom", "/api/v1/django-boom"])
def test_it_answers_unhandled_exceptions_with_json_500(db, path, caplog):
    client = APIClient(raise_request_exception=False)
    body = assert_json_error(client.get(path), 500, "server_error")
    # The exception's text (which may hold patient data) is not sent to the client.
    assert "Jane" not in str(body) and "failure" not in body["detail"]


@pytest.mark.urls("tests.api.urls_faulty")
def test_it_keeps_non_api_pages_as_django_renders_them(db):
    client = APIClient(raise_request_exception=False)
    response = client.get("/not-api/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_it_throttles_token_endpoint_with_retry_after(db, throttle_rates, anon_client):
    throttle_rates(auth="3/min")
    statuses = [
        anon_client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}).status_code
        for _ in range(3)
    ]
    response = anon_client.post("/api/v1/auth/token/", {"username": "x", "password": "y"})
    assert statuses == [401, 401, 401]
    assert_json_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_a_database_outage_answers_503_not_500(supervisor_client, monkeypatch):
    from django.db import OperationalError

    from paramedics import views

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views, "paramedics_visible_to", down)
    response = supervisor_client.get("/api/v1/paramedics")
    body = assert_json_error(response, 503, "database_unavailable")
    assert "closed the connection" not in body["detail"]
    assert response["Retry-After"] == "5"


def test_uploads_are_throttled_per_user_with_retry_after(
    paramedic_client, paramedic, throttle_rates
):
    throttle_rates(uploads="2/min")
    url = f"/api/v1/paramedics/{paramedic.id}/xray"
    statuses = [paramedic_client.post(url, {}, format="multipart").status_code for _ in range(2)]
    response = paramedic_client.post(url, {}, format="multipart")
    assert statuses == [400, 400]
    assert_json_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_a_database_outage_outside_the_api_is_a_plain_503(client, supervisor, monkeypatch):
    from django.db import InterfaceError

    from paramedics.admin import ParamedicAdmin

    def down(*args, **kwargs):
        raise InterfaceError("connection already closed")

    client.force_login(supervisor)
    monkeypatch.setattr(ParamedicAdmin, "get_queryset", down)
    client.raise_request_exception = False
    response = client.get("/admin/paramedics/paramedic/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"temporarily unavailable" in response.content
