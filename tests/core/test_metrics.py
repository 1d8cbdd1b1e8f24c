"""/metrics (design §10): who may read it, and that its numbers are the service's."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations.models import InboxMessage, OutboxEvent, OutboxState
from tests.factories import TaskFactory
from tests.helpers import client_for

OUTSIDE = "203.0.113.9"


def scrape(client=None, **headers) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # the test client's 127.0.0.1
        ({"REMOTE_ADDR": "::1"}, True),
        ({"REMOTE_ADDR": OUTSIDE}, False),
        ({"REMOTE_ADDR": OUTSIDE, "HTTP_AUTHORIZATION": "Bearer metrics-secret"}, True),
        ({"REMOTE_ADDR": OUTSIDE, "HTTP_AUTHORIZATION": "Bearer wrong"}, False),
        ({"REMOTE_ADDR": OUTSIDE, "HTTP_AUTHORIZATION": "metrics-secret"}, False),
        ({"REMOTE_ADDR": OUTSIDE, "HTTP_X_FORWARDED_FOR": "127.0.0.1"}, False),
        ({"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}, False),
    ],
    ids=[
        "loopback",
        "loopback-v6",
        "outside",
        "token",
        "wrong-token",
        "token-not-bearer",
        "forged-forwarded-for",
        "no-address",
    ],
)
def test_only_the_token_or_the_loopback_reads_metrics(settings, db, headers, allowed):
    settings.METRICS_TOKEN = "metrics-secret"
    response = Client().get("/metrics", **headers)
    if allowed:
        assert response.status_code == 200
        assert b"paramedic_http_requests_total" in response.content
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert b"paramedic_" not in response.content


def test_behind_a_declared_proxy_the_real_client_counts(settings, db):
    settings.TRUSTED_PROXY_COUNT = 1
    proxied = {"REMOTE_ADDR": "127.0.0.1"}  # a reverse proxy on the same host
    outside = Client().get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE, **proxied)
    assert outside.status_code == 403
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", **proxied).status_code == 200


def test_without_a_token_configured_no_bearer_opens_it(settings, db):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


def test_only_get_reads_metrics(db):
    response = Client().post("/metrics")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_requests_are_counted_per_route_never_per_id(supervisor):
    tasks = TaskFactory.create_batch(3)
    before = scrape()
    client = client_for(supervisor)
    for task in tasks:
        assert client.get(f"/api/v1/tasks/{task.id}").status_code == 200
    assert client.get("/api/v1/tasks/not-a-task").status_code == 404
    assert Client().get("/no/such/page").status_code == 404
    after = scrape()

    route = "api/v1/tasks/{pk}"
    counted = value(after, "paramedic_http_requests_total", method="GET", route=route, status="200")
    assert (
        counted
        - value(before, "paramedic_http_requests_total", method="GET", route=route, status="200")
        == 3
    )
    not_found = dict(method="GET", route=route, status="404")
    assert (
        value(after, "paramedic_http_requests_total", **not_found)
        - value(before, "paramedic_http_requests_total", **not_found)
        == 1
    )
    unmatched = dict(method="GET", route="<unmatched>", status="404")
    assert value(after, "paramedic_http_requests_total", **unmatched) >= 1
    timed = value(after, "paramedic_http_request_duration_seconds_count", method="GET", route=route)
    assert timed >= 4
    labels = {dict(key[1]).get("route", "") for key in after}
    assert not any(str(task.id) in label for task in tasks for label in labels)


def test_an_unknown_method_is_one_series(db):
    Client().generic("BREW", "/healthz")
    Client().generic("PROPFIND", "/healthz")
    samples = scrape()
    methods = {
        dict(key[1]).get("method") for key in samples if key[0] == "paramedic_http_requests_total"
    }
    assert "BREW" not in methods and "PROPFIND" not in methods
    assert "other" in methods


def test_the_outbox_and_the_bus_as_the_database_has_them(db):
    OutboxEvent.objects.all().delete()
    task = TaskFactory()  # task.created -> patient
    now = timezone.now()
    make = dict(kind="task.created", aggregate_type="task", aggregate_id=task.id, payload={})
    OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                **make, destination="notification", state=OutboxState.DEAD, next_attempt_at=now
            ),
            OutboxEvent(
                **make, destination="notification", state=OutboxState.DEAD, next_attempt_at=now
            ),
            OutboxEvent(
                **make, destination="bus", state=OutboxState.DELIVERED, next_attempt_at=now
            ),
            OutboxEvent(**make, destination="bus", state=OutboxState.PENDING, next_attempt_at=now),
        ]
    )
    OutboxEvent.objects.filter(destination="bus", state=OutboxState.PENDING).update(
        created_at=now - timedelta(minutes=5)
    )
    OutboxEvent.objects.filter(destination="patient").update(
        state=OutboxState.PENDING, created_at=now - timedelta(seconds=30)
    )
    InboxMessage.objects.create(message_id="m1", outcome="created")
    InboxMessage.objects.create(message_id="m2", outcome="created")
    InboxMessage.objects.create(message_id="m3", outcome="dead", reason="not JSON")

    samples = scrape()

    assert value(samples, "paramedic_outbox_events", destination="notification", state="dead") == 2
    assert value(samples, "paramedic_outbox_events", destination="bus", state="pending") == 1
    assert value(samples, "paramedic_outbox_events", destination="xray", state="pending") == 0
    assert value(samples, "paramedic_outbox_dead_events", destination="notification") == 2
    assert value(samples, "paramedic_outbox_dead_events", destination="bus") == 0
    bus_age = value(samples, "paramedic_outbox_oldest_pending_age_seconds", destination="bus")
    assert 299 <= bus_age <= 330
    patient_age = value(
        samples, "paramedic_outbox_oldest_pending_age_seconds", destination="patient"
    )
    assert 29 <= patient_age <= 60
    assert value(samples, "paramedic_outbox_oldest_pending_age_seconds", destination="xray") == 0
    assert value(samples, "paramedic_bus_published_events_total") == 1
    assert value(samples, "paramedic_bus_consumed_messages_total", outcome="created") == 2
    assert value(samples, "paramedic_bus_consumed_messages_total", outcome="dead") == 1
    assert value(samples, "paramedic_bus_consumed_messages_total", outcome="duplicate") == 0
