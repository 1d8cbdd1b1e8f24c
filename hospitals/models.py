"""Hospitals and the staff who keep their status (design §21)."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tasks.models import Capability


class HospitalStatus(models.TextChoices):
    OPEN = "open", "Open"
    DIVERSION = "diversion", "On diversion"


class Hospital(models.Model):
    """A destination. Its status (`open` or `diversion`, beds) is kept by its own staff.

    Changed only in hospitals.services.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    lat = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    lon = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    capabilities = models.JSONField(
        default=list, blank=True, help_text=f"Among: {', '.join(Capability.values)}."
    )
    status = models.CharField(
        max_length=10, choices=HospitalStatus.choices, default=HospitalStatus.OPEN
    )
    diversion_reason = models.CharField(max_length=200, blank=True)
    ed_beds_available = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=HospitalStatus.values), name="hospital_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180),
                name="hospital_location_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def location(self) -> dict:
        return {"lat": self.lat, "lon": self.lon}

    def clean(self) -> None:
        # The admin's check; the API's serializer checks the same list.
        if not isinstance(self.capabilities, list) or not set(self.capabilities) <= set(
            Capability.values
        ):
            raise ValidationError(
                {"capabilities": f"A list among: {', '.join(Capability.values)}."}
            )


class HospitalStaff(models.Model):
    """Ties a login (group `hospitals`) to the one hospital it speaks for."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hospital_staff"
    )
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "hospital staff"

    def __str__(self) -> str:
        return f"{self.user} at {self.hospital.code}"


class HandoffState(models.TextChoices):
    """A pre-arrival report's life (design §21): sent -> acknowledged -> arrived ->
    offloaded, or cancelled / redirected (a new report to another hospital)."""

    SENT = "sent", "Sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ARRIVED = "arrived", "Arrived"
    OFFLOADED = "offloaded", "Offloaded"
    CANCELLED = "cancelled", "Cancelled"
    REDIRECTED = "redirected", "Redirected"


# A task has at most one handoff in these states.
ACTIVE_HANDOFF_STATES = (HandoffState.SENT, HandoffState.ACKNOWLEDGED, HandoffState.ARRIVED)


class Acuity(models.TextChoices):
    """Triage level, after the Emergency Severity Index (1 most urgent)."""

    RESUSCITATION = "resuscitation", "1 Resuscitation"
    EMERGENT = "emergent", "2 Emergent"
    URGENT = "urgent", "3 Urgent"
    LESS_URGENT = "less_urgent", "4 Less urgent"
    NON_URGENT = "non_urgent", "5 Non-urgent"


class Sex(models.TextChoices):
    """FHIR's administrative gender codes."""

    MALE = "male", "Male"
    FEMALE = "female", "Female"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


# Vital signs a report may carry, with the ranges a living patient's reading falls in
# (anything outside is a typing error, refused, not stored): field -> (min, max, unit).
VITAL_RANGES = {
    "bp_systolic": (30, 300, "mmHg"),
    "bp_diastolic": (10, 200, "mmHg"),
    "pulse": (0, 300, "/min"),
    "resp_rate": (0, 80, "/min"),
    "spo2": (40, 100, "%"),
    "temperature_c": (25.0, 45.0, "Cel"),
    "gcs": (3, 15, "{score}"),
}


def _vital(name: str, *, decimal: bool = False):
    low, high, unit = VITAL_RANGES[name]
    field = models.FloatField if decimal else models.PositiveSmallIntegerField
    return field(
        null=True,
        blank=True,
        validators=[MinValueValidator(low), MaxValueValidator(high)],
        help_text=f"{low}-{high} {unit}",
    )


class Handoff(models.Model):
    """A crew's pre-arrival report to a hospital (a "ringdown", design §21).

    No name or identifier of the patient: estimated age and sex only. Changed only in
    hospitals.handoffs.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(
        "tasks.EmergencyTask", on_delete=models.PROTECT, related_name="handoffs"
    )
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="handoffs")
    paramedic = models.ForeignKey(
        "paramedics.Paramedic", on_delete=models.PROTECT, related_name="handoffs"
    )
    state = models.CharField(
        max_length=12, choices=HandoffState.choices, default=HandoffState.SENT, db_index=True
    )
    acuity = models.CharField(max_length=16, choices=Acuity.choices)
    age_years = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(120)], help_text="Estimated."
    )
    sex = models.CharField(max_length=8, choices=Sex.choices)
    chief_complaint = models.CharField(max_length=200)
    stable = models.BooleanField()
    bp_systolic = _vital("bp_systolic")
    bp_diastolic = _vital("bp_diastolic")
    pulse = _vital("pulse")
    resp_rate = _vital("resp_rate")
    spo2 = _vital("spo2")
    temperature_c = _vital("temperature_c", decimal=True)
    gcs = _vital("gcs")
    treatments = models.JSONField(default=list, blank=True)
    eta = models.DateTimeField(help_text="Expected arrival at the hospital.")
    diversion_confirmed = models.BooleanField(
        default=False, help_text="Sent to a hospital on diversion, confirmed by the crew."
    )
    sent_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    arrived_at = models.DateTimeField(null=True, blank=True)
    offloaded_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was cancelled or redirected."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(state__in=ACTIVE_HANDOFF_STATES),
                name="handoff_one_active_per_task",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=HandoffState.values), name="handoff_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["hospital", "state"], name="handoff_hospital_state_idx")]

    def __str__(self) -> str:
        return f"{self.state} handoff to {self.hospital_id}"

    @property
    def vitals(self) -> dict:
        return {name: getattr(self, name) for name in VITAL_RANGES}
