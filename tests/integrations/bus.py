"""The other services' side of the event bus, for the tests (design §11).

The Patient Service publishes to a ConsumerProcess's exchange as it does (confirmed,
persistent) and reads what the consumer dead-lettered; a Subscriber reads what the
service publishes.
"""

import time
import uuid

from cloudevents.core.bindings.rabbitmq import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kombu import Connection, Exchange, Queue

from tasks.inbound import EVENT_TYPE
from tasks.models import EmergencyTask
from tests.integrations.workers import ConsumerProcess, broker_url


def request_body(request_id: str, **changes) -> dict:
    return {
        "request_id": request_id,
        "patient_id": "patient-7",
        "priority": "critical",
        "description": "Fall from a ladder",
        "location": {"lat": 52.52, "lon": 13.405},
        **changes,
    }


def cloud_event(data, *, type_=EVENT_TYPE, event_id: str | None = None) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": event_id or str(uuid.uuid4()),
            "source": "/patient-service",
            "type": type_,
            "datacontenttype": "application/json",
        },
        data=data,
    )


class PatientService:
    """Publishes to the consumer's exchange as the Patient Service does (confirmed)."""

    def __init__(self, consumer: ConsumerProcess):
        self.connection = Connection(broker_url(), transport_options={"confirm_publish": True})
        self.exchange = Exchange(consumer.exchange, type="topic", durable=True, auto_delete=False)
        self.queue_name, self.dead_queue_name = consumer.queue, consumer.dead_queue
        self.out_exchange = consumer.out_exchange

    def send(self, body: bytes, *, content_type="application/cloudevents+json", **properties):
        self.connection.Producer().publish(
            body,
            exchange=self.exchange,
            routing_key="emergency.requested",
            content_type=content_type,
            content_encoding="utf-8",
            delivery_mode=2,
            retry=True,
            **properties,
        )

    def request(self, data, *, type_=EVENT_TYPE, event_id: str | None = None, **properties) -> str:
        """A structured-mode CloudEvent; its id is the message_id unless one is given."""
        event = cloud_event(data, type_=type_, event_id=event_id)
        message = to_structured(event, JSONFormat())
        properties.setdefault("message_id", event.get_id())
        self.send(message.body, content_type=message.content_type, **properties)
        return event.get_id()

    def depth(self, name: str) -> int:
        """Messages waiting in a queue (ready, not yet delivered to a consumer)."""
        channel = self.connection.channel()
        try:
            return Queue(name, durable=True)(channel).queue_declare(passive=True).message_count
        finally:
            channel.close()

    def dead_letters(self, count: int, timeout: float = 20) -> list:
        channel = self.connection.channel()
        queue = Queue(self.dead_queue_name, durable=True)(channel)
        found, deadline = [], time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            message = queue.get(no_ack=True)
            if message is None:
                time.sleep(0.1)
                continue
            found.append(message)
        channel.close()
        return found

    def close(self) -> None:
        channel = self.connection.channel()
        for name in (self.queue_name, self.dead_queue_name):
            Queue(name)(channel).delete()
        self.exchange(channel).delete()
        Exchange(self.out_exchange)(channel).delete()
        self.connection.release()


def wait_for(predicate, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def body_of(message) -> bytes:
    return message.body if isinstance(message.body, bytes) else message.body.encode()


def tasks_for(request_id: str) -> int:
    return EmergencyTask.objects.filter(request_id=request_id).count()


class Subscriber:
    """A durable-exchange subscriber: its own queue, bound to every routing key."""

    def __init__(self, url: str, exchange: str):
        self.connection = Connection(url)
        self.exchange = Exchange(exchange, type="topic", durable=True, auto_delete=False)
        self.queue = Queue(
            f"test-subscriber-{uuid.uuid4().hex[:8]}",
            exchange=self.exchange,
            routing_key="#",
            auto_delete=True,
        )
        self.queue(self.connection.default_channel).declare()

    def messages(self, count: int, timeout: float = 10) -> list:
        found, deadline = [], time.monotonic() + timeout
        queue = self.queue(self.connection.default_channel)
        while len(found) < count and time.monotonic() < deadline:
            message = queue.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            found.append(message)
        return found

    def close(self) -> None:
        channel = self.connection.default_channel
        self.queue(channel).delete()
        self.exchange(channel).delete()
        self.connection.release()
