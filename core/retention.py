"""Deleting what a table no longer needs to keep (the purge jobs)."""

PURGE_BATCH = 5000


def delete_in_batches(queryset, *, batch: int = PURGE_BATCH) -> int:
    """Delete the queryset's rows a batch at a time, so a large backlog never holds
    one long transaction or lock; returns how many went. The delete repeats the
    queryset's condition: a row that changed since the batch was read stays."""
    purged = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return purged
        purged += queryset.filter(pk__in=ids).delete()[0]
