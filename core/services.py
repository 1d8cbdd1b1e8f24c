"""Housekeeping of core's own records."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import IdempotencyRecord

PURGE_BATCH = 5000


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than IDEMPOTENCY_KEY_HOURS; returns how many.

    Deleted in batches, so a large backlog never holds one long transaction.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    purged = 0
    while True:
        batch = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :PURGE_BATCH
            ]
        )
        if not batch:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
