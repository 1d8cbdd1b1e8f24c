"""Celery jobs of the outbox (named jobs.py so they are not confused with the `tasks` app).

Jobs take ids, re-read the database and call the outbox's delivery; they are safe
to run twice (at-least-once delivery with acks_late).
"""

from celery import shared_task

from . import consumer, delivery, live


@shared_task(name="integrations.deliver_event", ignore_result=True)
def deliver_event(event_id: str) -> int:
    """One row (and others due for its destination). Jobs are now queued in batches
    (deliver_events); this name stays for jobs an earlier release left queued."""
    return delivery.deliver(event_id)


@shared_task(name="integrations.deliver_events", ignore_result=True)
def deliver_events(event_ids: list[str]) -> int:
    return delivery.deliver_many(event_ids)


@shared_task(name="integrations.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    return delivery.relay()


@shared_task(name="integrations.purge_live_events", ignore_result=True)
def purge_live_events() -> int:
    return live.purge()


@shared_task(name="integrations.purge_delivered", ignore_result=True)
def purge_delivered() -> int:
    """Delivered outbox rows and received messages' outcomes past their retention."""
    return delivery.purge() + consumer.purge()
