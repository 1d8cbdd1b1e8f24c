from django.db import models


class IdempotencyRecord(models.Model):
    """The first answer to a field write sent with an Idempotency-Key (design §17).

    One row per (owner, key): a device that repeats a write after a lost answer,
    or replays a queue after a dead zone, gets the stored answer again instead of
    a second effect. `fingerprint` identifies the request (method, path, body):
    the same key with another request is refused. Rows older than
    IDEMPOTENCY_KEY_HOURS are purged by a periodic job (core.jobs).
    """

    # Whose keys these are: "paramedic:<id>" for the field endpoints.
    owner = models.CharField(max_length=64)
    key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The JSON answer as it was sent, byte for byte (a JSON column would reorder keys).
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_once_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key} -> {self.status_code}"
