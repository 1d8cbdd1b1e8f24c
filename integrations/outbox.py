"""The transactional outbox (design §8): events recorded with the change.

`record_event` runs inside the caller's transaction: the rows exist exactly when
the change commits. After commit each row is handed on (integrations.publishing):
an HTTP row to a Celery delivery job (in batches), a bus row to the process's
background publisher; if the broker is down the request still succeeds and the
relay delivers later (integrations.delivery).
"""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from . import bus, publishing, registry
from .models import Destination, OutboxEvent, OutboxState

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
            transaction.on_commit(
                lambda pk=event.pk, destination=event.destination: publishing.hand_on(
                    pk, destination
                )
            )
    return events


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
            transaction.on_commit(lambda pk=pk: publishing.hand_on(pk))
    return len(retried)
