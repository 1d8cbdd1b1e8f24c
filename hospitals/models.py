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
