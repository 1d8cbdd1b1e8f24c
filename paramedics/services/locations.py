"""The location trail (design §20): batches of fixes from a paramedic's device, and
the job that keeps the trail LOCATION_RETENTION_DAYS.

A fleet of 1,000 devices sends about 200 fixes a second, so the write path is two
statements per batch whatever its size, and the purge never deletes row by row on
PostgreSQL (daily partitions, dropped whole: core.partitions).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError
from core.field_time import device_time_problem
from core.partitions import drop_day_partitions_before, ensure_day_partitions
from core.retention import delete_in_batches

from ..models import LocationFix, Paramedic

TRAIL_TABLE = LocationFix._meta.db_table


class InvalidFixTime(ApplicationError):
    code = "invalid_time"
    default_detail = "A fix's time (`at`) is out of bounds."


@dataclass(frozen=True)
class TrailReceipt:
    """What a device learns from a batch: every fix in it is stored (now or before)."""

    received: int
    newest_at: datetime


def location_fixes_record(
    *, paramedic: Paramedic, fixes: list[dict], now: datetime | None = None
) -> TrailReceipt:
    """Store a batch of fixes; the newest becomes the paramedic's `last_location`.

    Two statements, whatever the batch's size: one INSERT of every fix that skips
    the keys already stored (a repeated batch, or a fix sent in two batches, is
    stored once: (paramedic, at) is the primary key, ON CONFLICT DO NOTHING), and
    one UPDATE of the last location whose WHERE clause requires the newest fix to
    be newer than the stored one, so a late batch of old fixes (or two batches
    racing) never moves the paramedic back in time. Each is idempotent, so a device
    retrying after a failure ends in the same state; they share one transaction
    only so that a batch costs one commit (one WAL flush): about half the time of
    a request on PostgreSQL. Two fixes of one time in a batch are one (the first). A fix's
    time outside the bounds of every device time (core.field_time) refuses the
    batch: 400 `invalid_time`, each bad fix named by its position under
    `errors.fixes`.
    """
    now = now or timezone.now()
    problems = [device_time_problem(fix["at"], now=now) for fix in fixes]
    if any(problems):
        raise InvalidFixTime(
            next(p for p in problems if p),
            errors={
                "fixes": [
                    {"at": [{"code": InvalidFixTime.code, "message": problem}]} if problem else {}
                    for problem in problems
                ]
            },
        )
    fixes = list({fix["at"]: fix for fix in reversed(fixes)}.values())  # one per time: the first
    newest = max(fixes, key=lambda fix: fix["at"])
    with transaction.atomic():  # one commit (one WAL flush) for both
        LocationFix.objects.bulk_create(
            [
                LocationFix(
                    paramedic_id=paramedic.pk,
                    at=fix["at"],
                    received_at=now,
                    lat=fix["lat"],
                    lon=fix["lon"],
                    accuracy_m=fix.get("accuracy_m"),
                    speed_mps=fix.get("speed_mps"),
                    heading_deg=fix.get("heading_deg"),
                )
                for fix in fixes
            ],
            ignore_conflicts=True,
        )
        Paramedic.objects.filter(
            Q(last_location_at__isnull=True) | Q(last_location_at__lt=newest["at"]), pk=paramedic.pk
        ).update(
            last_lat=newest["lat"],
            last_lon=newest["lon"],
            last_location_at=newest["at"],
            updated_at=now,
        )
    return TrailReceipt(received=len(fixes), newest_at=newest["at"])


@dataclass(frozen=True)
class TrailMaintenance:
    partitions_created: list[str]
    partitions_dropped: list[str]
    rows_deleted: int


def location_trail_maintain(*, now: datetime | None = None) -> TrailMaintenance:
    """Keep the trail LOCATION_RETENTION_DAYS (beat runs it; design §20).

    PostgreSQL: create the day partitions from yesterday (a device reports up to
    24 h back) to LOCATION_PARTITION_DAYS_AHEAD, and drop the days that ended
    before the retention's cut-off: a fix is kept at least LOCATION_RETENTION_DAYS
    and at most a day longer. Elsewhere (SQLite): delete the older fixes in
    batches, by the index on `at`.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.LOCATION_RETENTION_DAYS)
    if connection.vendor != "postgresql":
        deleted = delete_in_batches(LocationFix.objects.filter(at__lt=cutoff))
        return TrailMaintenance([], [], deleted)
    today = now.date()
    created = ensure_day_partitions(
        table=TRAIL_TABLE,
        column="at",
        first=today - timedelta(days=1),
        last=today + timedelta(days=settings.LOCATION_PARTITION_DAYS_AHEAD),
    )
    dropped, deleted = drop_day_partitions_before(table=TRAIL_TABLE, column="at", day=cutoff.date())
    return TrailMaintenance(created, dropped, deleted)
