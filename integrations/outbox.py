"""The transactional outbox (DESIGN §8): record events with the change, deliver after.

- `record_event` runs inside the caller's transaction: the rows exist exactly
  when the change commits. After commit a Celery job is queued for each row; if
  the broker is down the request still succeeds and the relay delivers later.
- Workers claim a row by pushing `next_attempt_at` one lease into the future
  (a conditional UPDATE, or SELECT ... FOR UPDATE SKIP LOCKED for the relay's
  batches), so two workers never deliver the same row at once and a crashed
  worker's claim runs out by itself.
- Delivery is at-least-once; the row id is the receiver's Idempotency-Key.
  Failures back off exponentially with jitter; after OUTBOX_MAX_ATTEMPTS, or on
  a permanent refusal (4xx), the row is `dead` until a supervisor retries it.
"""

import contextvars
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import bus, registry
from .clients import CLIENTS, IntegrationError, PermanentIntegrationError
from .models import Destination, OutboxEvent, OutboxState

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
_deliver_on_commit = contextvars.ContextVar("outbox_deliver_on_commit", default=True)


@contextmanager
def relay_only() -> Iterator[None]:
    """Rows recorded inside wait for the relay instead of getting a delivery job each.

    For bulk loads (seeding thousands of changes), where a job per row would
    only flood the broker.
    """
    token = _deliver_on_commit.set(False)
    try:
        yield
    finally:
        _deliver_on_commit.reset(token)


def record_event(*, kind: str, aggregate_type: str, aggregate_id, payload: dict) -> list:
    """Write one outbox row per destination subscribed to `kind` (see integrations.registry),
    and one for the event bus when it is configured. Call it inside the change's
    transaction.
    """
    now = timezone.now()
    destinations = list(registry.destinations(kind))
    if bus.configured():
        destinations.append(Destination.BUS)
    events = OutboxEvent.objects.bulk_create(
        OutboxEvent(
            kind=kind,
            destination=destination,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            payload=payload,
            next_attempt_at=now,
        )
        for destination in destinations
    )
    if _deliver_on_commit.get():
        for event in events:
            after_commit = _publish_now if event.destination == Destination.BUS else _queue_delivery
            transaction.on_commit(lambda pk=event.pk, then=after_commit: then(pk))
    return events


def _publish_now(event_id) -> None:
    """After commit: publish a bus row from this process (no Celery job for the bus).

    One confirm round trip on the process's open connection. If the bus is down
    the request is not held up for long (a short connect timeout), and requests
    leave the bus to the relay for EVENT_BUS_REST_SECONDS.
    """
    if bus.publisher().resting():
        return
    event = claim(event_id)
    if event is not None:
        _publish([event])


def _queue_delivery(event_id) -> None:
    """After commit: hand the row to a worker. A broker outage is not an error here."""
    # Imported here: jobs.py imports this module (the jobs call deliver and relay).
    from .jobs import deliver_event

    try:
        deliver_event.delay(str(event_id))
    except Exception as exc:  # broker down or misconfigured: the relay will deliver
        logger.warning(
            "could not queue outbox event %s (%s); the relay will deliver it",
            event_id,
            exc.__class__.__name__,
        )


def _lease() -> timedelta:
    return timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^(n-1)."""
    ceiling = min(
        settings.OUTBOX_RETRY_MAX_SECONDS,
        settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def claim(event_id) -> OutboxEvent | None:
    """Claim one due row for this worker, or None if it is not due or someone has it."""
    now = timezone.now()
    claimed = OutboxEvent.objects.filter(
        pk=event_id, state=OutboxState.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + _lease(), attempts=F("attempts") + 1)
    return OutboxEvent.objects.get(pk=event_id) if claimed else None


def claim_due(limit: int) -> list[OutboxEvent]:
    """Claim up to `limit` due rows; concurrent relays skip each other's rows."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(state=OutboxState.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        OutboxEvent.objects.filter(pk__in=ids).update(
            next_attempt_at=now + _lease(), attempts=F("attempts") + 1
        )
    return list(OutboxEvent.objects.filter(pk__in=ids).order_by("next_attempt_at"))


def send(event: OutboxEvent) -> None:
    """One delivery attempt: the subscribed handler with the destination's client.

    With no URL configured for the destination the event is logged and counts as
    delivered (the embedded default), so `make run` works alone.
    """
    if event.destination == Destination.BUS:
        try:
            if event.pk not in bus.publish([event]):
                raise IntegrationError("bus: the broker refused the message (nack)")
        except bus.BusUnavailable as exc:
            raise IntegrationError(f"bus: {exc}") from exc
        return
    client = CLIENTS[event.destination]()
    if not client.configured:
        logger.info(
            "event %s %s -> %s: no URL configured, logged only",
            event.pk,
            event.kind,
            event.destination,
        )
        return
    registry.handler_for(kind=event.kind, destination=event.destination)(client, event)


def attempt(event: OutboxEvent) -> str:
    """Deliver a claimed row and record the outcome; returns the new state."""
    try:
        send(event)
    except PermanentIntegrationError as exc:
        return _fail(event, str(exc), permanent=True)
    except IntegrationError as exc:
        return _fail(event, str(exc))
    except Exception as exc:
        # A bug, not an outage: keep the row (it may be fixed and retried), log it.
        logger.exception("outbox event %s failed unexpectedly", event.pk)
        return _fail(event, f"unexpected {exc.__class__.__name__}")
    OutboxEvent.objects.filter(pk=event.pk, state=OutboxState.PENDING).update(
        state=OutboxState.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return OutboxState.DELIVERED


def _fail(event: OutboxEvent, error: str, *, permanent: bool = False) -> str:
    dead = permanent or event.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    changes = {"last_error": error[:MAX_ERROR_LENGTH]}
    if dead:
        changes["state"] = OutboxState.DEAD
        logger.error("outbox event %s (%s) is dead: %s", event.pk, event.kind, error)
    else:
        delay = backoff_seconds(event.attempts)
        changes["next_attempt_at"] = timezone.now() + timedelta(seconds=delay)
        logger.warning(
            "outbox event %s (%s) attempt %s failed: %s; retry in %.0fs",
            event.pk,
            event.kind,
            event.attempts,
            error,
            delay,
        )
    OutboxEvent.objects.filter(pk=event.pk, state=OutboxState.PENDING).update(**changes)
    return changes.get("state", OutboxState.PENDING)


def deliver(event_id) -> str | None:
    """Deliver one row now if it is due and unclaimed (the after-commit job)."""
    event = claim(event_id)
    return attempt(event) if event is not None else None


def relay(batch_size: int | None = None) -> int:
    """Deliver whatever is due (the beat job); returns how many rows it handled.

    Bus rows go out as one confirmed batch; the others one by one.
    """
    events = claim_due(batch_size or settings.OUTBOX_RELAY_BATCH)
    _publish([e for e in events if e.destination == Destination.BUS])
    for event in events:
        if event.destination != Destination.BUS:
            attempt(event)
    return len(events)


def _publish(events: list[OutboxEvent]) -> bool | None:
    """Publish claimed bus rows as one batch and record each outcome.

    False when the bus was unreachable (every row failed and waits for a retry).
    """
    if not events:
        return None
    try:
        confirmed = bus.publish(events)
    except bus.BusUnavailable as exc:
        for event in events:
            _fail(event, f"bus: {exc}")
        return False
    OutboxEvent.objects.filter(pk__in=confirmed, state=OutboxState.PENDING).update(
        state=OutboxState.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    for event in events:
        if event.pk not in confirmed:
            _fail(event, "bus: the broker refused the message (nack)")
    return True


def outbox_retry(*, event_ids) -> int:
    """A supervisor's retry of dead (or waiting) rows: due now, attempts from zero."""
    retried = list(
        OutboxEvent.objects.filter(pk__in=event_ids)
        .exclude(state=OutboxState.DELIVERED)
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        OutboxEvent.objects.filter(pk__in=retried).update(
            state=OutboxState.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        for pk in retried:
            transaction.on_commit(lambda pk=pk: _queue_delivery(pk))
    return len(retried)
