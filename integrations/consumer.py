"""Consuming CloudEvents from RabbitMQ (DESIGN §11), for any domain handler.

An EventConsumer declares its durable queue, binds it to a topic exchange and
hands each message, parsed as a CloudEvent (structured or binary mode), to a handler function:

- the handler returns an outcome (e.g. "created", "duplicate"): the message is
  acknowledged after the handler's own transaction has committed;
- it raises Rejected(reason): a message that can never succeed (not a CloudEvent,
  the wrong type, invalid data) is copied to the dead-letter queue with the
  reason in its headers, confirmed by the broker, then acknowledged: it is never
  requeued forever;
- a database outage is transient: the same message is retried in this process
  with growing pauses, never lost (unacknowledged, RabbitMQ redelivers it if the
  process dies meanwhile).

One message at a time (prefetch 1). stop() (SIGTERM) lets the message in hand
finish, then the consumer leaves; during a retry pause it returns the message to
the queue first.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from itertools import chain, repeat

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerMixin

from core.errors import DATABASE_DOWN
from core.payloads import JsonRefused, load_json
from core.retention import delete_in_batches

from .models import InboxMessage

logger = logging.getLogger(__name__)

MAX_REASON = 500
MAX_BODY_BYTES = 1024 * 1024
RETRY_PAUSES = (1, 2, 5, 10, 30)  # seconds between attempts while the database is down


class Rejected(Exception):
    """This message can never be processed; its reason goes with it to the dead letters."""


Handler = Callable[[BaseCloudEvent], str]


class EventConsumer(ConsumerMixin):
    def __init__(
        self,
        *,
        url: str,
        exchange: str,
        routing_key: str,
        queue: str,
        dead_queue: str,
        handler: Handler,
    ):
        self.connection = Connection(url, heartbeat=30)
        self.exchange = Exchange(exchange, type="topic", durable=True, auto_delete=False)
        self.queue = Queue(queue, exchange=self.exchange, routing_key=routing_key, durable=True)
        self.dead_queue = Queue(dead_queue, durable=True)
        self.handler = handler
        self.handled = 0
        self._stopping = threading.Event()

    # --- kombu's ConsumerMixin --------------------------------------------------

    def get_consumers(self, Consumer, channel):
        self.dead_queue(channel).declare()
        # on_message, not callbacks: kombu hands over the raw message undecoded, so a
        # malformed body is this consumer's to refuse, not an error in kombu's loop.
        consumer = Consumer(
            queues=[self.queue], on_message=self.on_message, accept=None, auto_declare=True
        )
        consumer.qos(prefetch_count=1)
        return [consumer]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        logger.info(
            "consuming %s (bound to %s with %s)",
            self.queue.name,
            self.exchange.name,
            self.queue.routing_key,
        )

    def stop(self) -> None:
        """Finish the message in hand, then leave (the SIGTERM handler calls this)."""
        self.should_stop = True
        self._stopping.set()

    # --- one message --------------------------------------------------------------

    def on_message(self, message) -> None:
        if self._stopping.is_set():
            # Delivered while leaving (kombu dispatches what arrives during the cancel).
            message.requeue()
            return
        close_old_connections()  # a long-lived process: drop connections that broke meanwhile
        message_id = message.properties.get("message_id") or ""
        try:
            event = self._parse(message)
            outcome = self._handle_until_done(event)
        except Rejected as refusal:
            self._dead_letter(message, str(refusal))
            self._remember(message_id, "", "dead", str(refusal))
            message.ack()
            return
        except _Interrupted:
            message.requeue()  # stopping during a database outage: someone else's turn
            return
        self._remember(message_id or str(event.get_id()), event.get_type(), outcome, "")
        message.ack()
        self.handled += 1

    def _parse(self, message) -> BaseCloudEvent:
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        if len(raw) > MAX_BODY_BYTES:
            raise Rejected(f"message larger than {MAX_BODY_BYTES} bytes")
        try:
            load_json(raw)  # bounded first: depth, NaN, lone surrogates
            return from_rabbitmq(  # structured mode, or binary mode's cloudEvents: headers
                RabbitMQMessage(
                    headers={k: _text(v) for k, v in (message.headers or {}).items()},
                    content_type=message.content_type or "",
                    body=raw,
                ),
                JSONFormat(),
            )
        except JsonRefused as exc:
            raise Rejected(f"not JSON: {exc}") from None
        except Exception as exc:  # the library's own validation of a CloudEvent
            raise Rejected(f"not a CloudEvent 1.0: {exc.__class__.__name__}: {exc}") from None

    def _handle_until_done(self, event: BaseCloudEvent) -> str:
        """The handler's outcome; while the database is down, the same message again
        after each pause (the last pause repeats: the message is kept, not lost)."""
        for pause in chain(RETRY_PAUSES, repeat(RETRY_PAUSES[-1])):
            try:
                return self.handler(event)
            except DATABASE_DOWN as exc:
                close_old_connections()
                logger.warning(
                    "database unavailable handling %s (%s); retrying in %ss",
                    event.get_id(),
                    exc.__class__.__name__,
                    pause,
                )
                if self._stopping.wait(pause):
                    raise _Interrupted() from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _dead_letter(self, message, reason: str) -> None:
        """Copy the message to the dead-letter queue with the reason; confirmed."""
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-dead-reason": reason[:MAX_REASON],
                "x-original-exchange": message.delivery_info.get("exchange", ""),
                "x-original-routing-key": message.delivery_info.get("routing_key", ""),
            }
        )
        with self.connection.clone(transport_options={"confirm_publish": True}) as connection:
            connection.Producer().publish(
                message.body,
                exchange="",
                routing_key=self.dead_queue.name,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                message_id=message.properties.get("message_id"),
                delivery_mode=2,
                declare=[self.dead_queue],
                retry=True,
            )
        logger.warning("dead-lettered message %s: %s", message.properties.get("message_id"), reason)

    @staticmethod
    def _remember(message_id: str, kind: str, outcome: str, reason: str) -> None:
        """What became of each message (metrics, support); a redelivery updates its row."""
        if not message_id:
            return
        try:
            InboxMessage.objects.update_or_create(
                message_id=message_id[:128],
                defaults={"kind": kind[:128], "outcome": outcome, "reason": reason[:MAX_REASON]},
            )
        except DATABASE_DOWN:
            logger.warning("could not record the outcome of message %s", message_id)


def purge(*, now=None) -> int:
    """Forget what became of messages received over INBOX_RETENTION_DAYS ago (a
    periodic job). The rows serve metrics and support, not deduplication: a message
    redelivered after that is still one task (intake is idempotent by request_id)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.INBOX_RETENTION_DAYS)
    return delete_in_batches(InboxMessage.objects.filter(received_at__lt=cutoff))


class _Interrupted(Exception):
    pass


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def consumer_from_settings(handler: Handler) -> EventConsumer:
    """The emergency-request consumer as the settings describe it (DESIGN §11)."""
    return EventConsumer(
        url=settings.EVENT_BUS_URL,
        exchange=settings.EVENT_INBOUND_EXCHANGE,
        routing_key=settings.EVENT_INBOUND_ROUTING_KEY,
        queue=settings.EVENT_INBOUND_QUEUE,
        dead_queue=settings.EVENT_INBOUND_DEAD_QUEUE,
        handler=handler,
    )
