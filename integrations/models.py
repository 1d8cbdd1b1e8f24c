import uuid

from django.db import models


class Destination(models.TextChoices):
    PATIENT = "patient", "Patient Service"
    NOTIFICATION = "notification", "Notification Service"
    XRAY = "xray", "X-ray Service"
    BUS = "bus", "Event bus"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead"


class OutboxEvent(models.Model):
    """One delivery of one event to one outside service (design §8).

    Written in the same transaction as the change that causes it. `id` is sent
    as the Idempotency-Key, so a repeated delivery is recognised by the receiver.
    `next_attempt_at` doubles as the lease: a worker claims a row by moving it
    into the future, so a crashed worker's claim simply runs out.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40)  # e.g. task.assigned
    destination = models.CharField(max_length=16, choices=Destination.choices)
    aggregate_type = models.CharField(max_length=16)  # "task" | "xray"
    aggregate_id = models.UUIDField(db_index=True)
    payload = models.JSONField(default=dict)
    state = models.CharField(
        max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's query: due pending rows, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state=OutboxState.PENDING),
                name="outbox_due_idx",
            ),
            # The purge's query: delivered rows, oldest first.
            models.Index(
                fields=["delivered_at"],
                condition=models.Q(state=OutboxState.DELIVERED),
                name="outbox_delivered_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=OutboxState.values), name="outbox_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.destination} ({self.state})"


class InboxOutcome(models.TextChoices):
    HANDLING = "handling", "Being handled (not finished)"
    CREATED = "created", "Created"
    DUPLICATE = "duplicate", "Duplicate (already processed)"
    DEAD = "dead", "Dead-lettered"


class InboxMessage(models.Model):
    """What became of each message consumed from the bus (design §11), by its id.

    A redelivered message updates its row. Metrics count these; support looks up
    why a message was dead-lettered. `attempts` counts the deliveries since the
    message was last finished: each is counted (outcome `handling`) before it is
    handled, so a message that kills its consumer every time is seen as poison.
    """

    message_id = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=128, blank=True)  # the CloudEvent type
    outcome = models.CharField(max_length=16, choices=InboxOutcome.choices)
    reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.message_id} {self.outcome}"


class LiveEvent(models.Model):
    """One change pushed to open streams (design §12), in commit order.

    Written in the change's transaction (integrations.live.record), so a rolled-back
    change leaves none; read by the streams of every process, live and on replay
    after `Last-Event-ID`. It holds ids only: a stream renders what its viewer may
    see when it sends. Kept LIVE_RETENTION_HOURS, then purged.
    """

    id = models.BigAutoField(primary_key=True)  # the stream's event id
    kind = models.CharField(max_length=40)
    subject_type = models.CharField(max_length=16)  # "task" | "paramedic"
    subject_id = models.UUIDField()
    # Whose stream it goes to besides the all-seeing ones, and the audience the subject
    # just left: ids the writing app gives meaning to (for a task, the paramedic
    # concerned, and the one who declined it or was reassigned).
    audience_id = models.UUIDField(null=True, blank=True)
    former_audience_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["audience_id", "id"], name="live_audience_idx"),
            models.Index(fields=["former_audience_id", "id"], name="live_former_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.subject_type}:{self.subject_id}"


class RoadNode(models.Model):
    """A junction of the road graph (design §18), an OpenStreetMap node id.

    Written only by `manage.py load_roads` (COPY), read by integrations.routing.
    """

    id = models.BigIntegerField(primary_key=True)
    lat = models.FloatField()
    lon = models.FloatField()

    class Meta:
        # Snapping a point to its nearest node searches a small box around it.
        indexes = [models.Index(fields=["lat", "lon"], name="roadnode_lat_lon_idx")]

    def __str__(self) -> str:
        return f"node {self.id}"


class RoadEdge(models.Model):
    """A drivable road segment between two nodes, in pgRouting's shape: `cost` is the
    seconds from `source` to `target` at the road's speed, `reverse_cost` the way
    back (-1: one-way). `lat`/`lon` (the source node's) let a search load only the
    edges around the places it connects."""

    id = models.BigAutoField(primary_key=True)
    source = models.BigIntegerField()
    target = models.BigIntegerField()
    cost = models.FloatField()
    reverse_cost = models.FloatField()
    lat = models.FloatField()
    lon = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["lat", "lon"], name="roadedge_lat_lon_idx")]

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"
