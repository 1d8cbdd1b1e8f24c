"""Housekeeping of core's own records."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import IdempotencyRecord
from .retention import delete_in_batches


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than IDEMPOTENCY_KEY_HOURS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    return delete_in_batches(IdempotencyRecord.objects.filter(created_at__lt=cutoff))
