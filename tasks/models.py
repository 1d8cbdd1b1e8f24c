import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from paramedics.models import CertificationLevel, certified_at_least

from .validators import validate_external_id


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# A paramedic holds at most one task in these states (design §6).
ACTIVE_STATUSES = (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)


class Milestone(models.TextChoices):
    """Field milestones of a task (design §17, after NEMSIS eTimes), in their order.

    Each is recorded at most once, with the device's time; any may be skipped, none
    may come after a later one. `acknowledged` belongs to an assigned task,
    `en_route` is set by starting it, the rest to a task in progress.
    """

    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    EN_ROUTE = "en_route", "En route"
    ON_SCENE = "on_scene", "On scene"
    AT_PATIENT = "at_patient", "At patient"
    TRANSPORTING = "transporting", "Transporting"
    AT_DESTINATION = "at_destination", "At destination"

    @property
    def field(self) -> str:
        """The task's timestamp field for this milestone, e.g. `on_scene_at`."""
        return f"{self.value}_at"


MILESTONES = tuple(Milestone)


class TaskPriority(models.TextChoices):
    CRITICAL = "critical", "Critical"
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"


class Capability(models.TextChoices):
    """What a hospital can treat beyond a general emergency department (design §21);
    a call type's plan may need one of them."""

    STROKE = "stroke", "Stroke centre"
    STEMI = "stemi", "Cardiac catheterisation (STEMI)"
    TRAUMA_1 = "trauma_1", "Level 1 trauma centre"
    PEDIATRIC = "pediatric", "Paediatric emergency"
    BURNS = "burns", "Burns unit"


# The call type of a task that names none (design §18); seeded by a migration.
DEFAULT_CALL_TYPE = "other"
TARGET_MINUTES_VALIDATORS = [MinValueValidator(1), MaxValueValidator(240)]


class CallType(models.Model):
    """A kind of call and its response plan (a run card, design §18).

    Supervisors edit plans in the admin. A task keeps the target its plan gave it
    when it arrived (`EmergencyTask.target_minutes`), so editing a plan never
    rewrites how past tasks are measured.
    """

    code = models.SlugField(max_length=32, unique=True, help_text="What callers send.")
    label = models.CharField(max_length=100)
    default_priority = models.CharField(
        max_length=10,
        choices=TaskPriority.choices,
        help_text="The priority of a task of this type that names none.",
    )
    certification = models.CharField(
        max_length=20,
        choices=CertificationLevel.choices,
        blank=True,
        help_text="The least certification the plan asks for (higher ones qualify too); "
        "blank: any crew.",
    )
    target_critical_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=TARGET_MINUTES_VALIDATORS
    )
    target_urgent_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=TARGET_MINUTES_VALIDATORS
    )
    target_routine_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=TARGET_MINUTES_VALIDATORS,
        help_text="Response targets (call to on scene) per priority; blank: "
        "RESPONSE_TARGET_MINUTES.",
    )
    reasoning = models.TextField(blank=True, help_text="Why the plan is what it is.")
    capability = models.CharField(
        max_length=16,
        choices=Capability.choices,
        blank=True,
        help_text="What the destination hospital needs (design §21); blank: any.",
    )

    class Meta:
        ordering = ["label"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(default_priority__in=TaskPriority.values),
                name="call_type_priority_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def target_minutes(self, priority: str) -> int:
        """The response target of a task of this type at `priority`."""
        minutes = getattr(self, f"target_{priority}_minutes")
        return minutes if minutes is not None else settings.RESPONSE_TARGET_MINUTES

    @property
    def qualified_levels(self) -> list[str] | None:
        """The certifications that meet the plan; None when any crew does."""
        return certified_at_least(self.certification) if self.certification else None


class EmergencyTask(models.Model):
    """An emergency request from a patient, tracked from intake to the end.

    `status`, `paramedic` and the timestamps change only in tasks.services.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request_id = models.CharField(
        max_length=100,
        unique=True,
        validators=[validate_external_id],
        help_text="The caller's id for this request (idempotency).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="created_tasks",
        help_text="The service account or supervisor that submitted the request.",
    )
    patient_id = models.CharField(max_length=64, db_index=True, validators=[validate_external_id])
    consultation_id = models.CharField(max_length=64, blank=True)
    priority = models.CharField(max_length=10, choices=TaskPriority.choices, db_index=True)
    call_type = models.ForeignKey(
        CallType,
        to_field="code",
        on_delete=models.PROTECT,
        default=DEFAULT_CALL_TYPE,
        related_name="tasks",
    )
    target_minutes = models.PositiveSmallIntegerField(
        help_text="The response target its plan gave it on arrival (design §18)."
    )
    description = models.TextField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    lat = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    lon = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    status = models.CharField(
        max_length=12, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True
    )
    paramedic = models.ForeignKey(
        "paramedics.Paramedic",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tasks",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Field milestones, at the device's time of the action (design §17).
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    en_route_at = models.DateTimeField(null=True, blank=True)
    on_scene_at = models.DateTimeField(null=True, blank=True)
    at_patient_at = models.DateTimeField(null=True, blank=True)
    transporting_at = models.DateTimeField(null=True, blank=True)
    at_destination_at = models.DateTimeField(null=True, blank=True)
    # From the Patient Service (design §8); shown to the assigned paramedic and
    # supervisors only, never logged.
    patient_details = models.JSONField(null=True, blank=True)
    patient_details_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The database's own guarantee of "one active task per paramedic".
            models.UniqueConstraint(
                fields=["paramedic"],
                condition=models.Q(status__in=ACTIVE_STATUSES),
                name="task_one_active_per_paramedic",
            ),
            # Pending tasks have no paramedic; assigned and later ones do.
            models.CheckConstraint(
                condition=models.Q(status=TaskStatus.PENDING, paramedic__isnull=True)
                | models.Q(status=TaskStatus.CANCELLED)
                | models.Q(
                    status__in=[*ACTIVE_STATUSES, TaskStatus.COMPLETED], paramedic__isnull=False
                ),
                name="task_paramedic_matches_status",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=TaskStatus.values), name="task_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180),
                name="task_location_range",
            ),
        ]
        indexes = [
            models.Index(fields=["paramedic", "status"], name="task_paramedic_status_idx"),
            models.Index(fields=["created_by", "created_at"], name="task_creator_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.priority} {self.status} {self.request_id}"

    @property
    def location(self) -> dict:
        return {"lat": self.lat, "lon": self.lon}

    @property
    def last_step_at(self) -> datetime:
        """When the task last moved: received, assigned, started or a milestone (the
        board's "since last step")."""
        steps = [self.assigned_at, self.started_at, *(getattr(self, m.field) for m in MILESTONES)]
        return max((at for at in steps if at is not None), default=self.created_at)

    def target_state(self, now: datetime) -> str:
        """The response target as the board colours it: `met` (crew on scene in time),
        `late` (past it, or on scene after it), `near` (past half of it), else `ok`."""
        due = self.created_at + timedelta(minutes=self.target_minutes)
        if self.on_scene_at is not None:
            return "met" if self.on_scene_at <= due else "late"
        if now > due:
            return "late"
        return "near" if now > due - timedelta(minutes=self.target_minutes / 2) else "ok"

    @property
    def latest_milestone(self) -> tuple[Milestone, datetime] | None:
        """The furthest milestone recorded so far, and when (the board shows it)."""
        for milestone in reversed(MILESTONES):
            at = getattr(self, milestone.field)
            if at is not None:
                return milestone, at
        return None


class TaskHistory(models.Model):
    """One row per status change or milestone, written in the change's transaction.

    `at` is when it happened: the device's time where the device reported one
    (design §17), else the server's; `recorded_at` is always when the server
    recorded it. Offline catch-up (`removed`) compares `recorded_at`.
    """

    task = models.ForeignKey(EmergencyTask, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=12, choices=TaskStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=TaskStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    paramedic = models.ForeignKey(
        "paramedics.Paramedic", on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    # Set on milestone rows (from_status == to_status); blank for status changes.
    milestone = models.CharField(max_length=16, choices=Milestone.choices, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["recorded_at", "id"]
        verbose_name_plural = "task history"
        indexes = [
            # "Which tasks left this paramedic since T" (design §17 catch-up).
            models.Index(fields=["paramedic", "recorded_at"], name="history_paramedic_recorded_idx")
        ]

    def __str__(self) -> str:
        return self.caption

    @property
    def caption(self) -> str:
        """What happened, in words: "Received (Pending)", "Assigned -> In progress",
        a milestone's name, or the note of a row that changed no status (priority)."""
        if self.milestone and self.from_status == self.to_status:
            return Milestone(self.milestone).label
        to_label = self.get_to_status_display()
        if not self.from_status:
            return f"Received ({to_label})"
        if self.from_status == self.to_status:
            return self.note or to_label
        return f"{self.get_from_status_display()} -> {to_label}"


class ReminderKind(models.TextChoices):
    NOT_STARTED = "not_started", "Assigned but not started"
    UNASSIGNED = "unassigned", "Pending without a paramedic"


class TaskReminder(models.Model):
    """A reminder sent for one threshold crossing, so each is sent once.

    `reference_at` is the moment the clock started (assigned_at or created_at):
    a task declined and assigned again starts a new clock and may be reminded again.
    """

    task = models.ForeignKey(EmergencyTask, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    reference_at = models.DateTimeField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "kind", "reference_at"], name="reminder_once_per_threshold"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} reminder for {self.task_id}"
