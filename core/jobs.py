"""Celery jobs of core (beat runs them; see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from .services import idempotency_records_purge


@shared_task(name="core.purge_idempotency_records", ignore_result=True)
def purge_idempotency_records() -> int:
    return idempotency_records_purge()
