"""Delivery with real parts: Celery worker and beat on RabbitMQ, PostgreSQL, and
HTTP stand-ins on 127.0.0.1. Each test says what must not be lost (design §8).
"""

import time

import pytest

from config.celery_app import app as celery_app
from integrations.models import OutboxEvent, OutboxState
from tests.factories import ParamedicFactory, TaskFactory
from tests.helpers import client_for
from tests.integrations.stand_ins import NOTIFICATION, PATIENT, XRAY
from tests.integrations.workers import CeleryProcesses, broker_url, use_broker

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def celery(stand_ins, tmp_path):
    processes = CeleryProcesses(
        tmp_path,
        {
            "PATIENT_SERVICE_URL": stand_ins.url(PATIENT),
            "NOTIFICATION_SERVICE_URL": stand_ins.url(NOTIFICATION),
            "XRAY_SERVICE_URL": stand_ins.url(XRAY),
            "INTEGRATION_TOKEN": "integration-secret-token",
        },
    )
    saved = {
        key: celery_app.conf[key]
        for key in ("task_always_eager", "broker_url", "task_default_queue")
    }
    use_broker(celery_app, broker_url(), processes.queue)
    yield processes
    processes.stop_all()
    use_broker(celery_app, saved["broker_url"] or "memory://", saved["task_default_queue"])
    celery_app.conf.task_always_eager = saved["task_always_eager"]


def assign_many(supervisor, count: int) -> list:
    tasks = TaskFactory.create_batch(count)
    client = client_for(supervisor)
    for task in tasks:
        paramedic = ParamedicFactory()
        response = client.post(
            f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(paramedic.id)}, format="json"
        )
        assert response.status_code == 200, response.content
    return tasks


def wait_until_delivered(destination: str, count: int, timeout: float = 40) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(OutboxEvent.objects.filter(destination=destination))
        if len(rows) >= count and all(r.state == OutboxState.DELIVERED for r in rows):
            return rows
        time.sleep(0.2)
    states = list(OutboxEvent.objects.values_list("kind", "destination", "state", "attempts"))
    raise AssertionError(f"not all {destination} events delivered: {states}")


def test_a_service_down_for_the_first_attempts_loses_nothing(celery, stand_ins, supervisor):
    """Must not be lost: any notification. Duplicates carry the same Idempotency-Key."""
    stand_ins.fail_first[NOTIFICATION] = 3
    celery.start_worker()
    celery.start_beat()

    tasks = assign_many(supervisor, 4)

    events = wait_until_delivered("notification", 4)
    assert {e.payload["task_id"] for e in events} == {str(t.id) for t in tasks}
    calls = stand_ins.to(NOTIFICATION)
    assert len(calls) >= 4 + 3
    keys = [c.headers["Idempotency-Key"] for c in calls]
    assert set(keys) == {str(e.pk) for e in events}
    assert sum(e.attempts for e in events) == len(calls)


def test_the_broker_unreachable_during_a_request_delays_but_loses_nothing(
    celery, stand_ins, supervisor
):
    """Must not be lost: the assignment (committed) and its events (relayed later)."""
    use_broker(celery_app, "amqp://guest:guest@127.0.0.1:1//", celery.queue)
    started = time.monotonic()
    tasks = assign_many(supervisor, 2)
    assert time.monotonic() - started < 20  # requests do not hang on the dead broker
    assert OutboxEvent.objects.filter(state=OutboxState.PENDING).count() >= 2
    assert stand_ins.to(NOTIFICATION) == []

    # The broker is reachable again for the worker and beat: the relay delivers.
    use_broker(celery_app, broker_url(), celery.queue)
    celery.start_worker()
    celery.start_beat()
    events = wait_until_delivered("notification", 2)
    assert {e.payload["task_id"] for e in events} == {str(t.id) for t in tasks}
    assert all(
        e.state == OutboxState.DELIVERED for e in OutboxEvent.objects.filter(kind="task.created")
    )


def test_a_worker_killed_mid_delivery_is_replaced_by_another(celery, stand_ins, supervisor):
    """Must not be lost: the notification the dead worker was sending."""
    stand_ins.stall_first[NOTIFICATION] = 6
    first = celery.start_worker()
    (task,) = assign_many(supervisor, 1)
    stand_ins.wait_for(NOTIFICATION, 1, timeout=20)  # the first worker is mid-request

    celery.kill(first)
    celery.start_worker()
    celery.start_beat()

    (event,) = wait_until_delivered("notification", 1)
    assert event.payload["task_id"] == str(task.id)
    assert event.attempts >= 2
    keys = {c.headers["Idempotency-Key"] for c in stand_ins.to(NOTIFICATION)}
    assert keys == {str(event.pk)}
