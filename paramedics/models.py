import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from .validators import validate_badge_number, validate_e164_phone, validate_station_code


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


def certified_at_least(level: str) -> list[str]:
    """The certification levels that can do what `level` can (the choices run from the
    least to the most trained), e.g. paramedic -> [paramedic, critical_care]."""
    values = CertificationLevel.values
    return values[values.index(level) :]


class Station(models.Model):
    """A base station: where paramedics start their shifts (design §14).

    Paramedics refer to it by its code (the column they always had), so the API
    keeps accepting and returning the code.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=100, unique=True, validators=[validate_station_code])
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    lat = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    lon = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    min_staff = models.PositiveSmallIntegerField(
        default=1, help_text="Paramedics the station needs on shift at every hour."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            # "Mitte" and "mitte" are one station to a person.
            models.UniqueConstraint(Lower("code"), name="station_code_unique_ci"),
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90) | models.Q(lat__isnull=True),
                name="station_lat_range",
            ),
            models.CheckConstraint(
                condition=models.Q(lon__gte=-180, lon__lte=180) | models.Q(lon__isnull=True),
                name="station_lon_range",
            ),
            # Stations made from the old free-text base_station have no location yet.
            models.CheckConstraint(
                condition=models.Q(lat__isnull=True, lon__isnull=True)
                | models.Q(lat__isnull=False, lon__isnull=False),
                name="station_location_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})" if self.name != self.code else self.code

    @property
    def location(self) -> dict | None:
        if self.lat is None:
            return None
        return {"lat": self.lat, "lon": self.lon}


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
    # The station's code is the stored value (the column is the old free-text one).
    base_station = models.ForeignKey(
        Station,
        to_field="code",
        db_column="base_station",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="paramedics",
    )
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
    def base_station_code(self) -> str:
        """What the API shows: the station's code, '' for none (no query)."""
        return self.base_station_id or ""

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def last_location(self) -> dict | None:
        if self.last_location_at is None:
            return None
        return {"lat": self.last_lat, "lon": self.last_lon, "recorded_at": self.last_location_at}


class Shift(models.Model):
    """Who is on duty at a station, and when (design §14)."""

    # Longest shift a supervisor may plan.
    MAX_LENGTH_HOURS = 24

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    paramedics = models.ManyToManyField(
        Paramedic, through="ShiftAssignment", related_name="shifts", blank=True
    )
    notes = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["station", "starts_at"], name="shift_station_start_idx"),
            models.Index(fields=["starts_at", "ends_at"], name="shift_period_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.station.code} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M} UTC"


class ShiftAssignment(models.Model):
    """One paramedic on one shift.

    The shift's period is copied here so the database itself can refuse two
    overlapping shifts of one paramedic: on PostgreSQL an exclusion constraint
    over (paramedic, [starts_at, ends_at)) (migration 0005, btree_gist); on SQLite
    the service's check, under SQLite's single writer.
    """

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="assignments")
    paramedic = models.ForeignKey(
        Paramedic, on_delete=models.PROTECT, related_name="shift_assignments"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # When the shift-end job took this paramedic off duty (or found nothing to do);
    # null while the shift runs, or while the paramedic still finishes a task.
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shift", "paramedic"], name="shift_assignment_unique"),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="shift_assignment_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(
                fields=["paramedic", "starts_at", "ends_at"], name="shift_assignment_period_idx"
            ),
            models.Index(
                fields=["ends_at"],
                name="shift_assignment_due_idx",
                condition=models.Q(released_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.paramedic_id} on {self.shift_id}"


class LocationFix(models.Model):
    """One position a paramedic's device reported (design §20): the location trail.

    Keyed by (paramedic, at): a device sending a batch again, or one fix in two
    batches, stores it once (the insert skips keys it already holds). On PostgreSQL
    the table is partitioned by day on `at` (migration 0008, core.partitions): the
    purge drops whole days older than LOCATION_RETENTION_DAYS instead of deleting
    rows one by one.
    """

    pk = models.CompositePrimaryKey("paramedic_id", "at")
    # The primary key's index leads with it: no index of its own.
    paramedic = models.ForeignKey(
        Paramedic, on_delete=models.CASCADE, related_name="location_fixes", db_index=False
    )
    # The device's time of the fix (design §17's bounds), and when the service got it.
    at = models.DateTimeField()
    received_at = models.DateTimeField()
    lat = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    lon = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading_deg = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["paramedic_id", "at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90), name="location_fix_lat_range"
            ),
            models.CheckConstraint(
                condition=models.Q(lon__gte=-180, lon__lte=180), name="location_fix_lon_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.paramedic_id} at {self.at:%Y-%m-%d %H:%M:%S} UTC"
