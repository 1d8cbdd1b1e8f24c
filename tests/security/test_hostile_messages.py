"""Hostile messages on the event bus: one message never stops emergency intake (design §16).

Each class once, through the consumer as deployed (`manage.py consume_emergency_requests`,
a separate process) on RabbitMQ and PostgreSQL: an id or header the service cannot keep
(a NUL, too long, not a string), headers too large to copy to the dead letters, a
message that keeps killing its consumer. After each, the bad message is in the dead
letters with its reason, the consumer is still running and the next valid request
becomes one task. A handler's own bug is shown with the consumer in this process.
tests/fuzz/test_consumer_fuzz.py publishes generated properties, headers and bodies.
"""

import contextlib
import json
import logging
import signal
import sys
import threading
import uuid
from datetime import datetime
from unittest import mock

import amqp.serialization
import pytest
from cloudevents.core.bindings.rabbitmq import to_structured
from cloudevents.core.formats.json import JSONFormat
from django.db import connection
from kombu import Connection, Exchange, Queue

from integrations.consumer import EventConsumer
from integrations.models import InboxMessage, InboxOutcome
from tasks.inbound import EVENT_TYPE, emergency_request_received
from tasks.models import EmergencyTask
from tests.integrations.bus import (
    PatientService,
    body_of,
    cloud_event,
    request_body,
    tasks_for,
    wait_for,
)
from tests.integrations.test_consumer import consumer_waits_on_the_lock, lock_tasks_table
from tests.integrations.workers import ConsumerProcess, broker_url

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def consumer(tmp_path, service_user):
    process = ConsumerProcess(tmp_path, username=service_user.username)
    yield process
    process.stop()


@pytest.fixture
def patient_service(consumer):
    publisher = PatientService(consumer)
    yield publisher
    publisher.close()


def assert_intake_goes_on(consumer, patient_service, after: str) -> None:
    """The consumer is still running, and a valid request becomes exactly one task."""
    request_id = f"after-{uuid.uuid4().hex[:12]}"
    patient_service.request(request_body(request_id))
    wait_for(lambda: tasks_for(request_id), timeout=15, what=f"a task after {after}")
    assert tasks_for(request_id) == 1
    assert consumer.process.poll() is None, consumer.output()[-3000:]
    assert patient_service.depth(consumer.queue) == 0


def structured(data, **attributes) -> bytes:
    event = cloud_event(data)
    body = json.loads(to_structured(event, JSONFormat()).body)
    return json.dumps({**body, **attributes}).encode()


# name -> (message properties, CloudEvent attributes, words the reason holds)
BAD_IDS = {
    "NUL in message_id": ({"message_id": "bad\x00id"}, {}, "message_id"),
    "NUL in the CloudEvent id, no message_id": ({"message_id": ""}, {"id": "bad\x00id"}, " id"),
    "message_id not UTF-8": ({"message_id": b"bad\xffid"}, {}, "message_id"),
    "escape sequence in message_id": ({"message_id": "\x1b[2Jfake"}, {}, "message_id"),
    "message_id over 128 characters": ({"message_id": "m" * 129}, {}, "message_id"),
    "CloudEvent id over 128 characters": ({"message_id": ""}, {"id": "e" * 129}, " id"),
    "CloudEvent type over 128 characters": ({}, {"type": "t" * 129}, "type"),
    "a line break in the CloudEvent source": ({}, {"source": "/a\nforged log line"}, "source"),
}


@pytest.mark.parametrize(("properties", "attributes", "named"), BAD_IDS.values(), ids=BAD_IDS)
def test_an_id_the_service_cannot_keep_is_dead_lettered_and_intake_goes_on(
    consumer, patient_service, properties, attributes, named
):
    consumer.start()
    patient_service.send(structured(request_body("bad-id"), **attributes), **properties)

    (dead,) = patient_service.dead_letters(1, timeout=15)
    assert named in dead.headers["x-dead-reason"], dead.headers
    assert dead.headers["x-dead-reason"].isprintable()
    assert tasks_for("bad-id") == 0  # refused before use: no task from it
    assert_intake_goes_on(consumer, patient_service, "a bad id")


# Binary mode: the CloudEvent's attributes are ce- headers, which kombu decodes to
# whatever AMQP type they were sent as.
NOT_TEXT = {
    "a table": {"a": 1},
    "an array": ["bus-id"],
    "an integer": 12345,
    "a timestamp": datetime(2026, 1, 1),
    "bytes that are not UTF-8": b"\xff\xfe-id",
}


@pytest.mark.parametrize("value", NOT_TEXT.values(), ids=NOT_TEXT)
def test_a_cloudevent_header_that_is_not_text_is_dead_lettered(consumer, patient_service, value):
    consumer.start()
    headers = {
        "ce-specversion": "1.0",
        "ce-id": value,
        "ce-source": "/patient-service",
        "ce-type": EVENT_TYPE,
        "x-trace": {"nested": [1, 2.5, None, b"\x00"]},  # not ours: copied, never read
    }
    body = json.dumps(request_body("binary-mode")).encode()
    patient_service.send(body, content_type="application/json", headers=headers)

    (dead,) = patient_service.dead_letters(1, timeout=15)
    assert "ce-id" in dead.headers["x-dead-reason"], dead.headers
    assert dead.headers["x-trace"] == {"nested": [1, 2.5, None, "\x00"]}  # as decoded
    assert tasks_for("binary-mode") == 0
    assert_intake_goes_on(consumer, patient_service, "a header that is not text")


@contextlib.contextmanager
def timestamps_past_year_9999():
    """What another client may send and Python cannot hold: a table timestamp of
    2**40 seconds (year ~36,800); py-amqp writes it only for a datetime, so this
    publisher's encoder is told that value for one."""
    with mock.patch.object(amqp.serialization.calendar, "timegm", return_value=2**40):
        yield


def nested(depth: int) -> dict:
    value: dict = {"bottom": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@contextlib.contextmanager
def deep_recursion_allowed():
    """Enough stack for this publisher to encode a table the consumer cannot decode
    within Python's default recursion limit."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


UNDECODABLE = {
    "a timestamp past year 9999": (timestamps_past_year_9999, {"x-when": datetime(2026, 1, 1)}),
    "tables nested past the recursion limit": (deep_recursion_allowed, {"x-deep": nested(3000)}),
}


@pytest.mark.parametrize(("publishing", "headers"), UNDECODABLE.values(), ids=UNDECODABLE)
def test_headers_the_client_library_cannot_decode_are_dead_lettered(
    consumer, patient_service, publishing, headers
):
    """py-amqp decodes a message's headers before any consumer code runs: a value it
    cannot turn into Python used to raise in its frame reader, and the consumer died
    on every redelivery. The headers are set aside with the reason instead."""
    consumer.start()
    with publishing():
        patient_service.request(request_body("undecodable"), headers=headers)

    (dead,) = patient_service.dead_letters(1, timeout=15)
    assert "headers" in dead.headers["x-dead-reason"], dead.headers
    assert tasks_for("undecodable") == 0
    assert_intake_goes_on(consumer, patient_service, "undecodable headers")


def test_headers_too_large_to_copy_whole_still_reach_the_dead_letters(consumer, patient_service):
    """The broker's frame limit (128 KiB) holds the headers as they came; adding the
    reason would pass it. What fits is copied, and the reason always goes."""
    consumer.start()
    padding = {"x-pad": "p" * 130_900}  # the frame just under the limit
    patient_service.request(
        request_body("big-headers"), type_="patient.discharged", headers=padding
    )

    (dead,) = patient_service.dead_letters(1, timeout=15)
    assert "patient.discharged" in dead.headers["x-dead-reason"]
    assert int(dead.headers["x-dead-dropped-headers"]) > 0
    assert_intake_goes_on(consumer, patient_service, "headers too large")


def test_a_message_that_keeps_killing_its_consumer_is_dead_lettered_as_poison(
    consumer, patient_service
):
    """A crash loop (here: killed while handling it, twice) is caught by the count of
    deliveries kept in the inbox table, not by RabbitMQ's redelivered flag."""
    consumer.env["EVENT_CONSUMER_MAX_DELIVERIES"] = "2"
    message_id = None
    for _ in range(2):
        holder = lock_tasks_table()
        try:
            consumer.start()
            message_id = message_id or patient_service.request(request_body("poison"))
            wait_for(lambda h=holder: consumer_waits_on_the_lock(h), what="the INSERT")
            consumer.signal(signal.SIGKILL)
            consumer.process.wait(timeout=10)
        finally:
            holder.close()

    consumer.start()  # the third delivery: over the limit, never handled again
    (dead,) = patient_service.dead_letters(1, timeout=15)
    assert dead.headers["x-dead-reason"].startswith("poison: delivered 3 times"), dead.headers
    assert tasks_for("poison") == 0
    row = InboxMessage.objects.get(message_id=message_id)
    assert (row.outcome, row.attempts) == (InboxOutcome.DEAD, 3)
    assert_intake_goes_on(consumer, patient_service, "a poison message")


# --- a handler's bug (the consumer is generic: any handler may have one) -------------


def handler_with_a_bug(event):
    """The emergency handler after a careless change: `address` is optional in
    POST /tasks, so a valid request without one raises KeyError here."""
    if not event.get_data()["address"].strip():
        raise AssertionError("unreachable: a blank address never gets here")
    return emergency_request_received(event)


def consumers_of(queue: str) -> int:
    with Connection(broker_url()) as bus:
        try:
            return Queue(queue)(bus.channel()).queue_declare(passive=True).consumer_count
        except bus.channel_errors:  # not declared yet
            return 0


@pytest.fixture
def consumer_in_a_thread(settings, service_user):
    settings.EVENT_CONSUMER_USERNAME = service_user.username
    suffix = uuid.uuid4().hex[:10]
    names = {
        "exchange": f"patient.events.test-{suffix}",
        "routing_key": "emergency.requested",
        "queue": f"paramedic.emergency-requests.test-{suffix}",
        "dead_queue": f"paramedic.emergency-requests.test-{suffix}.dead",
    }
    consumer = EventConsumer(url=broker_url(), handler=handler_with_a_bug, **names)

    def run():
        try:
            consumer.run()
        finally:
            connection.close()  # the thread's own, before the test database goes

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: consumers_of(names["queue"]), what="the consumer on its queue")
    yield consumer, thread, names
    consumer.stop()
    thread.join(timeout=10)
    with Connection(broker_url()) as bus:
        channel = bus.channel()
        for name in (names["queue"], names["dead_queue"]):
            Queue(name)(channel).delete()
        Exchange(names["exchange"])(channel).delete()


def test_a_handler_bug_dead_letters_that_message_with_its_traceback(consumer_in_a_thread, caplog):
    _, thread, names = consumer_in_a_thread
    with Connection(broker_url(), transport_options={"confirm_publish": True}) as bus:
        exchange = Exchange(names["exchange"], type="topic", durable=True, auto_delete=False)
        producer = bus.Producer()
        queue = Queue(names["queue"], exchange=exchange, routing_key=names["routing_key"])
        for data in (request_body("no-address"), request_body("with-address", address="Main")):
            event = cloud_event(data)
            message = to_structured(event, JSONFormat())
            producer.publish(
                message.body,
                exchange=exchange,
                routing_key=names["routing_key"],
                content_type=message.content_type,
                message_id=event.get_id(),
                declare=[queue],
                retry=True,
            )
        wait_for(lambda: tasks_for("with-address"), what="the next request's task")
        dead_queue = Queue(names["dead_queue"], durable=True)(bus.channel())
        dead = wait_for(lambda: dead_queue.get(no_ack=True), what="the dead letter")

    assert dead.headers["x-dead-reason"] == "handler failed: KeyError: 'address'"
    assert json.loads(body_of(dead))["data"]["request_id"] == "no-address"
    assert thread.is_alive()
    assert tasks_for("no-address") == 0 and tasks_for("with-address") == 1
    failure = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert EmergencyTask.objects.count() == 1
