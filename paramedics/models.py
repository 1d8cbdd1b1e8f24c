import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from .validators import validate_badge_number, validate_e164_phone


class ParamedicStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    ON_TASK = "on_task", "On task"
    OFF_DUTY = "off_duty", "Off duty"


class CertificationLevel(models.TextChoices):
    EMR = "emr", "Emergency Medical Responder"
    EMT = "emt", "Emergency Medical Technician"
    AEMT = "aemt", "Advanced EMT"
    PARAMEDIC = "paramedic", "Paramedic"
    CRITICAL_CARE = "critical_care", "Critical Care Paramedic"


class Paramedic(models.Model):
    """A field paramedic. Its login user's username is the badge number."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="paramedic"
    )
    badge_number = models.CharField(max_length=32, validators=[validate_badge_number])
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField()
    phone = models.CharField(max_length=16, blank=True, validators=[validate_e164_phone])
    certification_level = models.CharField(max_length=20, choices=CertificationLevel.choices)
    status = models.CharField(
        max_length=10,
        choices=ParamedicStatus.choices,
        default=ParamedicStatus.OFF_DUTY,
        db_index=True,
    )
    base_station = models.CharField(max_length=100, blank=True, db_index=True)
    last_lat = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    last_lon = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    last_location_at = models.DateTimeField(null=True, blank=True)
    # Set and cleared only by tasks.services, together with status `on_task`.
    current_task = models.OneToOneField(
        "tasks.EmergencyTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="current_for",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "badge_number"]
        constraints = [
            # Case-insensitive: "B-12" and "b-12" are the same badge to a person.
            models.UniqueConstraint(Lower("badge_number"), name="paramedic_badge_unique_ci"),
            models.UniqueConstraint(Lower("email"), name="paramedic_email_unique_ci"),
            models.CheckConstraint(
                condition=models.Q(last_lat__gte=-90, last_lat__lte=90)
                | models.Q(last_lat__isnull=True),
                name="paramedic_lat_range",
            ),
            models.CheckConstraint(
                condition=models.Q(last_lon__gte=-180, last_lon__lte=180)
                | models.Q(last_lon__isnull=True),
                name="paramedic_lon_range",
            ),
            # A location is all or nothing: lat, lon and the time it was recorded.
            models.CheckConstraint(
                condition=models.Q(
                    last_lat__isnull=True, last_lon__isnull=True, last_location_at__isnull=True
                )
                | models.Q(
                    last_lat__isnull=False,
                    last_lon__isnull=False,
                    last_location_at__isnull=False,
                ),
                name="paramedic_location_complete",
            ),
            # on_task exactly when a current task is set: one flag cannot drift from the other.
            models.CheckConstraint(
                condition=models.Q(status=ParamedicStatus.ON_TASK, current_task__isnull=False)
                | (~models.Q(status=ParamedicStatus.ON_TASK) & models.Q(current_task__isnull=True)),
                name="paramedic_on_task_has_task",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ParamedicStatus.values),
                name="paramedic_status_valid",
            ),
        ]
        indexes = [
            # Nearest-available dispatch narrows by status and a latitude band first.
            models.Index(fields=["status", "last_lat", "last_lon"], name="paramedic_dispatch_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.badge_number} {self.full_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def last_location(self) -> dict | None:
        if self.last_location_at is None:
            return None
        return {"lat": self.last_lat, "lon": self.last_lon, "recorded_at": self.last_location_at}
