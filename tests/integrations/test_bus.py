"""Publishing to the event bus on a real RabbitMQ (design §11).

Each test has an exchange of its own (so parallel tests never see each other's
events) and binds a queue of its own to it, as a subscriber would. The process's
background publisher works from its own database connection, so the tests that
use it commit for real (transaction=True), wait for it with flush(), and run on
PostgreSQL (on SQLite's shared in-memory test database a second connection meets
table locks; `make run`'s file database has no such problem).
"""

import json
import time
import uuid
from urllib.parse import urlsplit

import pytest

from integrations import delivery, outbox, publishing
from integrations.models import Destination, OutboxEvent, OutboxState
from tasks.models import EmergencyTask, TaskStatus
from tasks.services import task_change_status, task_record_milestone
from tests.factories import ParamedicFactory, TaskFactory
from tests.helpers import client_for, upload
from tests.integrations.bus import Subscriber
from tests.integrations.workers import broker_url
from tests.processes import TcpProxy
from tests.xrays.samples import image_bytes

pytestmark = [pytest.mark.rabbitmq]


@pytest.fixture
def bus(settings):
    settings.EVENT_BUS_URL = broker_url()
    settings.EVENT_EXCHANGE = f"paramedic.events.test-{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(broker_url(), settings.EVENT_EXCHANGE)
    yield subscriber
    subscriber.close()
    delivery.bus.publisher().close()


def bus_rows():
    return list(OutboxEvent.objects.filter(destination=Destination.BUS).order_by("created_at"))


@pytest.mark.postgres  # the publisher's own connection: see the module's docstring
@pytest.mark.django_db(transaction=True)
def test_a_tasks_whole_life_and_an_xray_arrive_as_cloudevents(bus, supervisor, paramedic):
    response = client_for(supervisor).post(
        "/api/v1/tasks",
        {"request_id": "bus-1", "patient_id": "p-1", "priority": "critical",
         "location": {"lat": 52.5, "lon": 13.4}},
        format="json",
    )  # fmt: skip
    task_id = response.json()["id"]
    client_for(supervisor).post(
        f"/api/v1/tasks/{task_id}/assign", {"paramedic": str(paramedic.id)}, format="json"
    )
    task_record_milestone(task_id=task_id, milestone="acknowledged", actor=paramedic.user)
    task_change_status(task_id=task_id, to_status=TaskStatus.IN_PROGRESS, actor=paramedic.user)
    task = EmergencyTask.objects.get(pk=task_id)
    medic = client_for(paramedic.user)
    assert upload(medic, paramedic, task, image_bytes("PNG")).status_code == 201
    task_change_status(task_id=task_id, to_status=TaskStatus.COMPLETED, actor=paramedic.user)
    assert publishing.flush()

    rows = bus_rows()
    kinds = [r.kind for r in rows]
    assert kinds == [
        "task.created",
        "task.assigned",
        "task.milestone",
        "task.status_changed",
        "xray.uploaded",
        "task.status_changed",
    ]
    assert {r.state for r in rows} == {OutboxState.DELIVERED}  # published after each commit

    messages = bus.messages(len(rows))
    assert len(messages) == len(rows)
    by_id = {m.properties["message_id"]: m for m in messages}
    for row in rows:
        message = by_id[str(row.pk)]
        assert message.delivery_info["routing_key"] == row.kind
        assert message.properties["delivery_mode"] == 2
        assert message.content_type == "application/cloudevents+json"
        event = json.loads(message.body)
        assert event["specversion"] == "1.0"
        assert event["id"] == str(row.pk)
        assert event["source"] == "/paramedic-service"
        assert event["type"] == f"paramedic.{row.kind}"
        assert event["subject"] == str(row.aggregate_id)
        assert event["datacontenttype"] == "application/json"
        assert event["time"].startswith(row.created_at.strftime("%Y-%m-%dT%H:%M"))
        assert event["data"] == row.payload
        assert "patient_details" not in json.dumps(event["data"])


@pytest.mark.postgres  # the publisher's own connection: see the module's docstring
@pytest.mark.django_db(transaction=True)
def test_a_republished_row_repeats_its_id(bus):
    """A publisher killed after the broker confirmed but before it marked the row
    delivered publishes it again: a consumer sees the same id twice."""
    task = TaskFactory(request_id="bus-again")
    assert publishing.flush()
    (row,) = OutboxEvent.objects.filter(destination=Destination.BUS, aggregate_id=task.pk)
    # Its lease over, the row is still pending: the relay takes it again.
    OutboxEvent.objects.filter(pk=row.pk).update(
        state=OutboxState.PENDING, next_attempt_at=row.created_at
    )
    assert delivery.relay() >= 1

    first, second = bus.messages(2)
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"] == str(row.pk)


def test_the_relay_publishes_a_batch_with_confirms(bus, db):
    OutboxEvent.objects.all().delete()
    with outbox.relay_only():
        for n in range(40):
            TaskFactory(request_id=f"batch-{n}")
    bus_pending = OutboxEvent.objects.filter(destination=Destination.BUS, state=OutboxState.PENDING)
    assert bus_pending.count() == 40

    while delivery.relay(batch_size=100):
        pass

    assert not bus_pending.exists()
    assert len(bus.messages(40)) == 40


@pytest.mark.postgres  # the publisher's own connection: see the module's docstring
@pytest.mark.django_db(transaction=True)
def test_requests_succeed_while_the_bus_is_cut_and_nothing_is_lost(bus, settings, supervisor):
    parts = urlsplit(broker_url())
    proxy = TcpProxy(parts.hostname, parts.port or 5672)
    settings.EVENT_BUS_URL = f"amqp://{parts.username}:{parts.password}@127.0.0.1:{proxy.port}//"
    settings.EVENT_BUS_CONNECT_TIMEOUT = 1
    try:
        TaskFactory(request_id="before-cut")  # the publisher connects through the proxy
        assert publishing.flush()
        proxy.cut()
        started = time.monotonic()
        client = client_for(supervisor)
        for n in range(5):
            response = client.post(
                "/api/v1/tasks",
                {"request_id": f"cut-{n}", "patient_id": "p-1", "priority": "urgent",
                 "location": {"lat": 52.5, "lon": 13.4}},
                format="json",
            )  # fmt: skip
            assert response.status_code == 201, response.content
        assert time.monotonic() - started < 5  # the requests were not held up
        assert publishing.flush()
        waiting = OutboxEvent.objects.filter(destination=Destination.BUS, state=OutboxState.PENDING)
        assert waiting.count() == 5
        # The first publish found the link broken; then the bus rests, left to the relay.
        tried = [row for row in waiting if row.attempts]
        assert tried and all(row.last_error.startswith("bus: ") for row in tried)

        proxy.restore()
        OutboxEvent.objects.update(next_attempt_at=waiting.first().created_at)  # due now
        while delivery.relay():
            pass
        assert not waiting.all().exists()
        ids = {json.loads(m.body)["data"]["request_id"] for m in bus.messages(6)}
        assert ids == {"before-cut", *(f"cut-{n}" for n in range(5))}
    finally:
        proxy.close()


def test_without_a_bus_nothing_is_recorded_for_it(settings, db):
    settings.EVENT_BUS_URL = ""
    TaskFactory(request_id="no-bus")
    assert not OutboxEvent.objects.filter(destination=Destination.BUS).exists()


def test_paramedic_factory_is_not_on_the_bus(bus, db):
    """Profiles are not events: only what the domain records is published."""
    ParamedicFactory()
    assert bus.messages(1, timeout=0.5) == []


def test_rows_for_a_bus_since_unset_wait_and_are_not_lost(bus, settings, db):
    with outbox.relay_only():
        TaskFactory(request_id="bus-gone")
    settings.EVENT_BUS_URL = ""
    delivery.relay()
    row = OutboxEvent.objects.get(destination=Destination.BUS)
    assert (row.state, row.attempts) == (OutboxState.PENDING, 1)
    assert row.last_error == "bus: EVENT_BUS_URL is not set"
