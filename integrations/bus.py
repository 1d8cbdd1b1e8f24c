"""The event bus (design §11): outbox rows published as CloudEvents to RabbitMQ.

Every event the domain records also gets a row for the bus (Destination.BUS)
when EVENT_BUS_URL is set. Rows are published to the durable topic exchange
EVENT_EXCHANGE (`paramedic.events`) as CloudEvents 1.0 in structured JSON mode
(the `cloudevents` library builds the message): id = the row's id, stable across
redeliveries; type `paramedic.<kind>`; routing key = the kind; persistent;
`message_id` = id.

A row counts as delivered only when the broker has confirmed it. Publishing is
batched: a batch is sent on one channel in confirm mode without waiting between
messages, then the confirms are collected (one round trip per batch, not per
message). Each process publishes what it committed from a background thread
(integrations.publishing); the relay publishes whatever is left (broker down,
process killed).
"""

import logging
import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from cloudevents.core.bindings.rabbitmq import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.conf import settings
from kombu import Connection, Exchange, Producer

from .models import OutboxEvent

logger = logging.getLogger(__name__)

TYPE_PREFIX = "paramedic."
CONTENT_TYPE = "application/cloudevents+json"
_FORMAT = JSONFormat()


class BusUnavailable(Exception):
    """The broker could not be reached, or did not confirm in time."""


def configured() -> bool:
    return bool(settings.EVENT_BUS_URL)


def cloud_event(event: OutboxEvent) -> CloudEvent:
    """The CloudEvent for an outbox row (the row's id is the event's id)."""
    return CloudEvent(
        attributes={
            "id": str(event.pk),
            "source": settings.EVENT_SOURCE,
            "type": TYPE_PREFIX + event.kind,
            "subject": str(event.aggregate_id),
            "time": event.created_at,
            "datacontenttype": "application/json",
        },
        data=event.payload,
    )


class Publisher:
    """One connection and confirm-mode channel per process, used under a lock."""

    def __init__(self, url: str, exchange: str):
        self.url, self.exchange_name = url, exchange
        self._lock = threading.Lock()
        self._connection = None
        self._channel = None
        self._producer = None
        self._next_tag = 1
        self._acked: set[int] = set()
        self._nacked: set[int] = set()
        self._resting_until = 0.0

    def resting(self) -> bool:
        """True for EVENT_BUS_REST_SECONDS after a failed publish: requests leave
        the bus to the relay meanwhile instead of each waiting for a timeout."""
        return time.monotonic() < self._resting_until

    def _connect(self) -> None:
        connection = Connection(
            self.url, connect_timeout=settings.EVENT_BUS_CONNECT_TIMEOUT, heartbeat=0
        )
        connection.ensure_connection(max_retries=1)
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        exchange = Exchange(self.exchange_name, type="topic", durable=True, auto_delete=False)
        exchange.declare(channel=channel)
        self._connection, self._channel = connection, channel
        self._producer = Producer(channel, exchange=exchange, auto_declare=False)
        self._next_tag = 1
        self._acked, self._nacked = set(), set()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(self._acked, delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(self._nacked, delivery_tag, multiple)

    def _settle(self, into: set[int], tag: int, multiple: bool) -> None:
        if multiple:
            settled = self._acked | self._nacked
            into.update(t for t in range(1, tag + 1) if t not in settled)
        else:
            into.add(tag)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # already broken: nothing left to close cleanly
                logger.debug("closing a broken bus connection failed", exc_info=True)
        self._connection = self._channel = self._producer = None

    def publish(self, events: list[OutboxEvent]) -> set:
        """Publish `events` as one batch; the ids the broker confirmed.

        Raises BusUnavailable when the broker cannot be reached or does not
        confirm the whole batch within EVENT_BUS_CONFIRM_TIMEOUT (the rows stay
        pending for the relay).
        """
        if not events:
            return set()
        with self._lock:
            try:
                if self._connection is None:
                    self._connect()
                confirmed = self._publish(events)
            except Exception as exc:  # unreachable, or broke mid-batch (socket, AMQP errors)
                self._drop()
                self._resting_until = time.monotonic() + settings.EVENT_BUS_REST_SECONDS
                if isinstance(exc, BusUnavailable):
                    raise
                raise BusUnavailable(exc.__class__.__name__) from exc
            self._resting_until = 0.0
            return confirmed

    def _publish(self, events: list[OutboxEvent]) -> set:
        tags = {}
        for event in events:
            message = to_structured(cloud_event(event), _FORMAT)
            self._producer.publish(
                message.body,
                routing_key=event.kind,
                content_type=message.content_type or CONTENT_TYPE,
                content_encoding="utf-8",
                headers=message.headers or None,
                message_id=str(event.pk),
                delivery_mode=2,  # persistent
                retry=False,
            )
            tags[self._next_tag] = event.pk
            self._next_tag += 1
        deadline = time.monotonic() + settings.EVENT_BUS_CONFIRM_TIMEOUT
        while not set(tags) <= (self._acked | self._nacked):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusUnavailable("the broker did not confirm the batch in time")
            self._connection.drain_events(timeout=remaining)
        confirmed = {tags[t] for t in tags if t in self._acked}
        self._acked.difference_update(tags)
        self._nacked.difference_update(tags)
        return confirmed


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    global _publisher
    with _publisher_lock:
        url, exchange = settings.EVENT_BUS_URL, settings.EVENT_EXCHANGE
        if _publisher is None or (_publisher.url, _publisher.exchange_name) != (url, exchange):
            if _publisher is not None:
                _publisher.close()
            _publisher = Publisher(url, exchange)
        return _publisher


def broker_label(url: str) -> str:
    """The broker's host and vhost for logs (never the credentials)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"


def publish(events: Iterable[OutboxEvent]) -> set:
    """Publish outbox rows to the bus; the ids confirmed (see Publisher.publish)."""
    if not configured():  # rows recorded while it was set: kept, retried, never lost
        raise BusUnavailable("EVENT_BUS_URL is not set")
    return publisher().publish(list(events))
