"""Delivering outbox rows (design §8): claim, send, record the outcome.

- Deliverers claim rows by pushing `next_attempt_at` one lease into the future
  (SELECT ... FOR UPDATE SKIP LOCKED), so two never deliver the same row at once
  and a crashed worker's claim runs out by itself. The outbox's own bookkeeping
  commits without waiting for the disk (`_bookkeeping`).
- Delivery is at-least-once; the row id is the receiver's Idempotency-Key.
  Failures back off exponentially with jitter; after OUTBOX_MAX_ATTEMPTS, or on
  a permanent refusal (4xx), the row is `dead` until a supervisor retries it.

The bottom of the outbox: rows are recorded by integrations.outbox, handed on after
commit by integrations.publishing, and delivered here (by the Celery jobs, the
relay and the background publisher). Nothing here imports those above it.
"""

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.retention import delete_in_batches

from . import bus, registry
from .clients import CLIENTS, IntegrationError, PermanentIntegrationError
from .models import Destination, OutboxEvent, OutboxState

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500


@contextmanager
def _bookkeeping() -> Iterator[None]:
    """A transaction for the outbox's own records (claims, outcomes) whose commit
    does not wait for the disk (PostgreSQL's synchronous_commit off, this
    transaction only).

    A crash can lose such a commit, and that is safe: a lost claim or outcome
    only means the row is delivered again, which at-least-once delivery with the
    row id as idempotency key already allows. The change and its outbox rows are
    committed durably as ever. Inside someone else's transaction it changes
    nothing (their commit stays synchronous).
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _lease() -> timedelta:
    return timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^(n-1)."""
    ceiling = min(
        settings.OUTBOX_RETRY_MAX_SECONDS,
        settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def claim_due(
    limit: int, *, destination: str | None = None, first=None, only=None
) -> list[OutboxEvent]:
    """Claim up to `limit` due rows, oldest first (`first`, if still due, at the head;
    with `only`, among those ids); concurrent claimers skip each other's rows."""
    now = timezone.now()
    due = OutboxEvent.objects.select_for_update(skip_locked=True).filter(
        state=OutboxState.PENDING, next_attempt_at__lte=now
    )
    if destination is not None:
        due = due.filter(destination=destination)
    if only is not None:
        due = due.filter(pk__in=only)
    with _bookkeeping():
        events = list(due.filter(pk=first)) if first else []
        if len(events) < limit:
            events += due.exclude(pk__in=[e.pk for e in events]).order_by("next_attempt_at")[
                : limit - len(events)
            ]
        leased_until = now + _lease()
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            next_attempt_at=leased_until, attempts=F("attempts") + 1
        )
    for event in events:
        event.next_attempt_at, event.attempts = leased_until, event.attempts + 1
    return events


def send(event: OutboxEvent) -> None:
    """One delivery attempt: the subscribed handler with the destination's client.

    With no URL configured for the destination the event is logged and counts as
    delivered (the embedded default), so `make run` works alone.
    """
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


def _send_or_fail(event: OutboxEvent) -> bool:
    """One attempt at a claimed row; a failure is recorded here. True if it went out."""
    try:
        send(event)
    except PermanentIntegrationError as exc:
        _fail(event, str(exc), permanent=True)
    except IntegrationError as exc:
        _fail(event, str(exc))
    except Exception as exc:
        # A bug, not an outage: keep the row (it may be fixed and retried), log it.
        logger.exception("outbox event %s failed unexpectedly", event.pk)
        _fail(event, f"unexpected {exc.__class__.__name__}")
    else:
        return True
    return False


def deliver_claimed(events: list[OutboxEvent]) -> None:
    """Deliver claimed rows: bus rows as one confirmed batch, the others one by one,
    their successes recorded together at the end.

    A crash mid-way only means the unrecorded rows are sent again after their lease
    (at-least-once). Rows not reached within half the lease are handed back, so
    slow services never let a lease run out under a row still being worked on.
    """
    _publish([e for e in events if e.destination == Destination.BUS])
    others = [e for e in events if e.destination != Destination.BUS]
    give_up_at = time.monotonic() + settings.OUTBOX_LEASE_SECONDS / 2
    delivered = []
    for position, event in enumerate(others):
        if time.monotonic() > give_up_at:
            _release(others[position:])
            break
        if _send_or_fail(event):
            delivered.append(event.pk)
    _mark_delivered(delivered)


def _release(events: list[OutboxEvent]) -> None:
    """Hand claimed rows back untried: due now, the claim's attempt not counted."""
    with _bookkeeping():
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events], state=OutboxState.PENDING).update(
            next_attempt_at=timezone.now(), attempts=F("attempts") - 1
        )


def _mark_delivered(event_ids) -> None:
    if not event_ids:
        return
    with _bookkeeping():
        OutboxEvent.objects.filter(pk__in=event_ids, state=OutboxState.PENDING).update(
            state=OutboxState.DELIVERED, delivered_at=timezone.now(), last_error=""
        )


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
    with _bookkeeping():
        OutboxEvent.objects.filter(pk=event.pk, state=OutboxState.PENDING).update(**changes)
    return changes.get("state", OutboxState.PENDING)


def deliver(event_id) -> int:
    """The after-commit job: deliver this row now if it is due and unclaimed, and with
    it up to OUTBOX_DELIVER_BATCH - 1 other due rows for the same destination.

    In a burst one job does the work of many; a job whose row already went out with
    another's batch finds that out with one read. Returns how many rows it handled.
    """
    destination = _due_destination(event_id)
    if destination is None:
        return 0
    events = claim_due(settings.OUTBOX_DELIVER_BATCH, destination=destination, first=event_id)
    deliver_claimed(events)
    return len(events)


_DUE_DESTINATION = (
    "SELECT {destination} FROM {table} WHERE {key} = %s AND {state} = %s AND {due} <= %s"
)


def deliver_many(event_ids) -> int:
    """The after-commit job of a batch: deliver those of these rows that are still
    due and unclaimed. Returns how many it handled."""
    events = claim_due(len(event_ids), only=event_ids)
    deliver_claimed(events)
    return len(events)


def _due_destination(event_id) -> str | None:
    """The row's destination if it is pending and due, else None.

    Plain SQL: most after-commit jobs in a burst end here (their row went out with
    an earlier job's batch), and building this query with the ORM costs several
    times more than running it.
    """
    meta, quote = OutboxEvent._meta, connection.ops.quote_name
    field = meta.get_field
    sql = _DUE_DESTINATION.format(  # names from the model; every value is a parameter
        table=quote(meta.db_table),
        key=quote(meta.pk.column),
        destination=quote(field("destination").column),
        state=quote(field("state").column),
        due=quote(field("next_attempt_at").column),
    )
    params = [
        meta.pk.get_db_prep_value(uuid.UUID(str(event_id)), connection),
        OutboxState.PENDING.value,
        field("next_attempt_at").get_db_prep_value(timezone.now(), connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def purge(*, now=None) -> int:
    """Drop rows delivered more than OUTBOX_RETENTION_DAYS ago (a periodic job).

    Pending rows are work still to do and dead ones wait for a supervisor's retry:
    both stay, however old.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    delivered = OutboxEvent.objects.filter(state=OutboxState.DELIVERED, delivered_at__lt=cutoff)
    return delete_in_batches(delivered)


def relay(batch_size: int | None = None) -> int:
    """Deliver whatever is due (the beat job); returns how many rows it handled."""
    events = claim_due(batch_size or settings.OUTBOX_RELAY_BATCH)
    deliver_claimed(events)
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
    _mark_delivered(confirmed)
    for event in events:
        if event.pk not in confirmed:
            _fail(event, "bus: the broker refused the message (nack)")
    return True


def publish_submitted(event_ids) -> None:
    """Publish these bus rows as one confirmed batch, if they are still due and
    unclaimed (the background publisher). While the bus rests after a failure,
    they are left to the relay."""
    if bus.publisher().resting():
        return
    _publish(claim_due(len(event_ids), destination=Destination.BUS, only=event_ids))
