"""Consuming CloudEvents from RabbitMQ (design §11), for any domain handler.

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

One message never stops the consumer (design §16):

- every value taken from it (message_id, content type, the ce- headers of binary
  mode, the body, the CloudEvent's attributes) is checked before use: its type, a
  length its column can hold, no control characters; a bad one is Rejected;
- any other error while handling it (a bug in a handler, a data error) is logged
  with its traceback and the message is dead-lettered ("handler failed: ...");
- each delivery is counted in the inbox table before the handler runs (one
  statement, committed): a message delivered more than EVENT_CONSUMER_MAX_DELIVERIES
  times without being finished, i.e. one its consumer keeps dying on, is
  dead-lettered as poison instead of being handled again;
- the dead-letter copy carries only what can be sent again (headers that re-encode
  and fit; the ids and properties that passed the checks) and always its reason.

One message at a time (prefetch 1). stop() (SIGTERM) lets the message in hand
finish, then the consumer leaves; during a retry pause it returns the message to
the queue first.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from itertools import chain, repeat
from struct import unpack_from
from typing import TypeVar

from amqp import serialization as amqp_serialization
from amqp.serialization import dumps as amqp_encode
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.rabbitmq import CE_PREFIX, RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerMixin

from core.errors import DATABASE_DOWN
from core.payloads import JsonRefused, load_json
from core.retention import delete_in_batches

from .models import InboxMessage, InboxOutcome

logger = logging.getLogger(__name__)

MAX_REASON = 500  # InboxMessage.reason
MAX_ID = 128  # InboxMessage.message_id (the message_id, else the CloudEvent id)
MAX_TYPE = 128  # InboxMessage.kind
MAX_ATTRIBUTE = 1024  # any other CloudEvent attribute (kept nowhere, but logged)
MAX_CONTENT_TYPE = 255  # an AMQP short string
MAX_BODY_BYTES = 1024 * 1024
# Headers copied to a dead letter, encoded: well under RabbitMQ's frame (128 KiB),
# which a message's headers may fill, so the reason always fits beside them.
MAX_COPIED_HEADER_BYTES = 64 * 1024
RETRY_PAUSES = (1, 2, 5, 10, 30)  # seconds between attempts while the database is down
# What a headers table py-amqp could not decode arrives as (see _decode_leniently).
UNDECODABLE_HEADERS = "x-undecodable-headers"
DEAD_LETTER_RETRIES = 3  # a broker that fails this often is down: the message is redelivered


class Rejected(Exception):
    """This message can never be processed; its reason goes with it to the dead letters."""


Handler = Callable[[BaseCloudEvent], str]
T = TypeVar("T")


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
        max_deliveries: int = 5,
    ):
        _decode_leniently()
        self.connection = Connection(url, heartbeat=30)
        self.exchange = Exchange(exchange, type="topic", durable=True, auto_delete=False)
        self.queue = Queue(queue, exchange=self.exchange, routing_key=routing_key, durable=True)
        self.dead_queue = Queue(dead_queue, durable=True)
        self.handler = handler
        self.max_deliveries = max_deliveries
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
        key, kind = "", ""
        try:
            try:
                key = _checked_text("message_id", message.properties.get("message_id"))
                event = self._parse(message)
                key, kind = key or event.get_id(), event.get_type()
                attempts = self._until_done(lambda: _count_delivery(key), key)
                if attempts > self.max_deliveries:
                    raise Rejected(
                        f"poison: delivered {attempts} times without being finished "
                        f"(limit {self.max_deliveries})"
                    )
                outcome = self._until_done(lambda: self.handler(event), key)
            except (Rejected, _Interrupted):
                raise
            except Exception as exc:
                # A bug, or data the database refused: this message's fault or the
                # code's, never the next one's. Set aside with the traceback logged.
                logger.exception("handler failed on message %s", _printable(key, MAX_ID))
                raise Rejected(f"handler failed: {exc.__class__.__name__}: {exc}") from None
        except Rejected as refusal:
            reason = _printable(str(refusal), MAX_REASON)
            self._dead_letter(message, reason)
            self._remember(key, kind, InboxOutcome.DEAD, reason)
            message.ack()
            return
        except _Interrupted:
            message.requeue()  # stopping during a database outage: someone else's turn
            return
        self._remember(key, kind, outcome, "")
        message.ack()
        self.handled += 1

    def _parse(self, message) -> BaseCloudEvent:
        """The message as a CloudEvent, each value used checked first; Rejected if not."""
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        if len(raw) > MAX_BODY_BYTES:
            raise Rejected(f"message larger than {MAX_BODY_BYTES} bytes")
        content_type = _checked_text("content_type", message.content_type, limit=MAX_CONTENT_TYPE)
        headers = message.headers if isinstance(message.headers, dict) else {}
        if UNDECODABLE_HEADERS in headers:
            raise Rejected(f"headers cannot be decoded ({headers[UNDECODABLE_HEADERS]})")
        attributes = {  # binary mode's CloudEvent attributes; other headers are not ours
            key: _checked_text(f"header {key}", value, limit=MAX_ATTRIBUTE)
            for key, value in headers.items()
            if isinstance(key, str) and key.lower().startswith(CE_PREFIX)
        }
        try:
            load_json(raw)  # bounded first: depth, NaN, lone surrogates
            event = from_rabbitmq(  # structured mode, or binary mode's ce- headers
                RabbitMQMessage(headers=attributes, content_type=content_type, body=raw),
                JSONFormat(),
            )
        except JsonRefused as exc:
            raise Rejected(f"not JSON: {exc}") from None
        except Exception as exc:  # the library's own validation of a CloudEvent
            raise Rejected(f"not a CloudEvent 1.0: {exc.__class__.__name__}: {exc}") from None
        for name, value in event.get_attributes().items():
            if isinstance(value, str):
                limit = {"id": MAX_ID, "type": MAX_TYPE}.get(name, MAX_ATTRIBUTE)
                _checked_text(f"CloudEvent {name}", value, limit=limit)
        if not event.get_id():
            raise Rejected("CloudEvent id is empty")
        return event

    def _until_done(self, step: Callable[[], T], key: str) -> T:
        """What `step` returns; while the database is down, `step` again after each
        pause (the last pause repeats: the message is kept, not lost)."""
        for pause in chain(RETRY_PAUSES, repeat(RETRY_PAUSES[-1])):
            try:
                return step()
            except DATABASE_DOWN as exc:
                close_old_connections()
                logger.warning(
                    "database unavailable handling %s (%s); retrying in %ss",
                    key,
                    exc.__class__.__name__,
                    pause,
                )
                if self._stopping.wait(pause):
                    raise _Interrupted() from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _dead_letter(self, message, reason: str) -> None:
        """Copy the message to the dead-letter queue with the reason; confirmed.

        Only what can be sent again is copied: headers that re-encode, within
        MAX_COPIED_HEADER_BYTES (how many were left out goes along), and properties
        that passed the checks. Should the copy still fail, the body goes with the
        reason alone. A broker that refuses even that is down: the error leaves
        the message unacknowledged, to be redelivered."""
        headers, dropped = _sendable_headers(message.headers)
        ours = {
            "x-dead-reason": reason,
            "x-original-exchange": _printable(message.delivery_info.get("exchange", ""), 255),
            "x-original-routing-key": _printable(message.delivery_info.get("routing_key", ""), 255),
        }
        if dropped:
            ours["x-dead-dropped-headers"] = dropped
        properties = {
            name: value
            for name in ("message_id", "content_type", "content_encoding")
            if _is_clean_text(value := message.properties.get(name), MAX_CONTENT_TYPE)
        }
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            self._publish_dead(body, {**headers, **ours}, properties)
        except Exception:
            logger.exception("could not copy message %s whole; sending its body", reason)
            self._publish_dead(body, ours, {})
        logger.warning(
            "dead-lettered message %s: %s", properties.get("message_id", "(no usable id)"), reason
        )

    def _publish_dead(self, body: bytes, headers: dict, properties: dict) -> None:
        with self.connection.clone(transport_options={"confirm_publish": True}) as connection:
            connection.Producer().publish(
                body,
                exchange="",
                routing_key=self.dead_queue.name,
                headers=headers,
                delivery_mode=2,
                declare=[self.dead_queue],
                retry=True,
                retry_policy={"max_retries": DEAD_LETTER_RETRIES},
                **properties,
            )

    @staticmethod
    def _remember(message_id: str, kind: str, outcome: str, reason: str) -> None:
        """What became of each message (metrics, support); a redelivery updates its row.
        Never raises: the message's fate is decided, its record is only for support."""
        if not message_id:
            return
        try:
            InboxMessage.objects.update_or_create(
                message_id=message_id,
                defaults={"kind": kind, "outcome": outcome, "reason": reason},
            )
        except DATABASE_DOWN:
            logger.warning("could not record the outcome of message %s", message_id)
        except Exception:
            logger.exception("could not record the outcome of message %s", message_id)


def purge(*, now=None) -> int:
    """Forget what became of messages received over INBOX_RETENTION_DAYS ago (a
    periodic job). The rows serve metrics and support, not deduplication: a message
    redelivered after that is still one task (intake is idempotent by request_id)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.INBOX_RETENTION_DAYS)
    return delete_in_batches(InboxMessage.objects.filter(received_at__lt=cutoff))


class _Interrupted(Exception):
    pass


def _lenient_short_string(value):
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


# py-amqp's own reader of a message's properties, wrapped by _lenient_headers.
_strict_loads = amqp_serialization.loads


def _lenient_headers(format, buf, offset):
    """py-amqp's `loads` for the one call its property decoder makes with it: the
    headers table. A table it cannot turn into Python (a timestamp past year 9999,
    tables nested past the recursion limit) becomes {UNDECODABLE_HEADERS: why}; the
    table's length prefix says where the next property starts."""
    try:
        return _strict_loads(format, buf, offset)
    except Exception as exc:
        if format != "F":
            raise
        (length,) = unpack_from(">I", buf, offset)
        return [{UNDECODABLE_HEADERS: exc.__class__.__name__}], offset + 4 + length


def _decode_leniently() -> None:
    """py-amqp decodes a message's properties in its frame reader, before any consumer
    code sees the message: a value it cannot decode raises there, the process exits
    and, redelivered, the message kills it again. Two of its module's names are
    replaced (for this process, which only consumes):

    - short strings (message_id, content_type, the routing key) are decoded with
      surrogateescape instead of strict UTF-8: bad bytes arrive as lone surrogates,
      which _checked_text refuses like any other unprintable character;
    - the headers table, when it cannot be decoded, arrives as a marker that
      _parse refuses (table values that are not UTF-8 already arrive as bytes).

    tests/integrations/test_consumer.py pins both against the installed py-amqp."""
    amqp_serialization.pstr_t = _lenient_short_string
    amqp_serialization.loads = _lenient_headers


def _count_delivery(message_id: str) -> int:
    """Count this delivery of `message_id`; how many since it was last finished.

    One statement, committed before the handler runs, so a delivery is counted even
    when the process dies handling it; concurrent consumers each add theirs."""
    table = connection.ops.quote_name(InboxMessage._meta.db_table)
    handling = InboxOutcome.HANDLING.value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, kind, outcome, reason, attempts, received_at) "  # noqa: S608 - the model's table
            "VALUES (%s, '', %s, '', 1, %s) ON CONFLICT (message_id) DO UPDATE SET "
            f"attempts = CASE WHEN {table}.outcome = %s THEN {table}.attempts + 1 ELSE 1 END, "
            "outcome = %s, received_at = excluded.received_at RETURNING attempts",
            [message_id, handling, timezone.now(), handling, handling],
        )
        return cursor.fetchone()[0]


def _checked_text(name: str, value, *, limit: int = MAX_ID) -> str:
    """`value` as text the service can keep and log; Rejected (naming it) if not.
    None is empty: an absent property."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected(f"{name} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise Rejected(f"{name} is not a string but {value.__class__.__name__}")
    if len(value) > limit:
        raise Rejected(f"{name} is longer than {limit} characters")
    if not value.isprintable():
        raise Rejected(f"{name} holds a control or unprintable character")
    return value


def _is_clean_text(value, limit: int) -> bool:
    try:
        return bool(_checked_text("", value, limit=limit))
    except Rejected:
        return False


def _printable(text: str, limit: int) -> str:
    """`text` with what a terminal or log reader would act on escaped, cut to `limit`."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)[:limit]


def _sendable_headers(headers) -> tuple[dict, int]:
    """The headers that AMQP can encode again, within MAX_COPIED_HEADER_BYTES, and
    how many were left out (kombu decodes some values it cannot send back)."""
    if not isinstance(headers, dict):
        return {}, 0
    kept, size = {}, 0
    for key, value in headers.items():
        try:
            encoded = len(amqp_encode("F", [{key: value}]))
        except Exception:  # e.g. a key over 255 bytes, a value no AMQP type holds
            encoded = None
        if encoded is not None and size + encoded <= MAX_COPIED_HEADER_BYTES:
            kept[key] = value
            size += encoded
    return kept, len(headers) - len(kept)


def consumer_from_settings(handler: Handler) -> EventConsumer:
    """The emergency-request consumer as the settings describe it (design §11)."""
    return EventConsumer(
        url=settings.EVENT_BUS_URL,
        exchange=settings.EVENT_INBOUND_EXCHANGE,
        routing_key=settings.EVENT_INBOUND_ROUTING_KEY,
        queue=settings.EVENT_INBOUND_QUEUE,
        dead_queue=settings.EVENT_INBOUND_DEAD_QUEUE,
        handler=handler,
        max_deliveries=settings.EVENT_CONSUMER_MAX_DELIVERIES,
    )
