"""The location trail's purge at a million fixes (design §20), on PostgreSQL.

    .venv/bin/python bench/trail_purge.py [--fixes 1000000] [--paramedics 100]

Uses DATABASE_URL, or a dedicated database `paramedic_bench_trail` on the local
server (created if missing; its trail and its `trail-*` paramedics are wiped: never
point it at a database you care about). It loads --fixes fixes spread evenly over
40 days (LOCATION_RETENTION_DAYS is 30, so a quarter has expired) into the daily
partitions, then:

- runs the purge (`location_trail_maintain`, beat's job): the expired days are
  dropped whole; its time, the partitions dropped and the rows gone;
- for comparison, deletes the same rows from an unpartitioned copy of the table
  (with an index on `at`, as SQLite's purge has): EXPLAIN ANALYZE of that DELETE,
  its time and the dead rows it leaves for VACUUM;
- EXPLAIN ANALYZE of the purge's only row statement (the DEFAULT partition's
  leftovers) and of a supervisor's read of one hour of one paramedic's trail,
  which touches one day's partition.
"""

import argparse
import os
import time
from datetime import timedelta

from common import ensure_database, postgres_banner, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_trail"
DAYS = 40
PLAIN = "bench_trail_unpartitioned"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixes", type=int, default=1_000_000)
    parser.add_argument("--paramedics", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    setup_django(
        {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        quiet=("paramedic.access",),
    )
    # After Django is set up (models need the app registry).
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from core.partitions import DEFAULT_SUFFIX, day_partitions, drop_day_partitions_before
    from core.partitions import ensure_day_partitions as ensure
    from paramedics.models import LocationFix, Paramedic
    from paramedics.services import location_trail_maintain
    from paramedics.services.locations import TRAIL_TABLE

    if connection.vendor != "postgresql":
        raise SystemExit("bench/trail_purge.py measures PostgreSQL's partitions: set DATABASE_URL")
    User = get_user_model()
    print(postgres_banner())

    def sql(statement: str, params=()):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else cursor.rowcount

    def explain(statement: str, params=()) -> str:
        rows = sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", params)
        return "\n".join(f"  {row[0]}" for row in rows)

    # A clean slate: no trail, no partitions, no bench paramedics.
    far_future = timezone.now().date() + timedelta(days=3650)
    drop_day_partitions_before(table=TRAIL_TABLE, column="at", day=far_future)
    sql(f"TRUNCATE {TRAIL_TABLE}")
    sql(f"DROP TABLE IF EXISTS {PLAIN}")
    Paramedic.objects.filter(badge_number__startswith="trail-").delete()
    User.objects.filter(username__startswith="trail-").delete()

    users = User.objects.bulk_create([User(username=f"trail-{i}") for i in range(args.paramedics)])
    Paramedic.objects.bulk_create(
        [
            Paramedic(
                user=user,
                badge_number=user.username,
                first_name="Trail",
                last_name=str(i),
                email=f"{user.username}@ems.example.org",
                certification_level="paramedic",
            )
            for i, user in enumerate(users)
        ]
    )

    now = timezone.now()
    start = now - timedelta(days=DAYS)
    per_paramedic = args.fixes // args.paramedics
    step = timedelta(days=DAYS) / per_paramedic
    created = ensure(
        table=TRAIL_TABLE,
        column="at",
        first=start.date(),
        last=now.date() + timedelta(days=settings.LOCATION_PARTITION_DAYS_AHEAD),
    )
    began = time.perf_counter()
    loaded = sql(
        f"INSERT INTO {TRAIL_TABLE} (paramedic_id, at, received_at, lat, lon, accuracy_m) "
        "SELECT p.id, t, t, 52.4 + random() * 0.2, 13.3 + random() * 0.2, 10 "
        "FROM paramedics_paramedic p, generate_series(%s::timestamptz, %s::timestamptz, %s) t "
        "WHERE p.badge_number LIKE 'trail-%%'",
        [start, start + step * (per_paramedic - 1), step],
    )
    sql(f"ANALYZE {TRAIL_TABLE}")
    print(
        f"\nloaded {loaded:,} fixes ({args.paramedics} paramedics, one every "
        f"{step.total_seconds():.0f} s each, over {DAYS} days) into {len(created)} day "
        f"partitions in {time.perf_counter() - began:.1f} s"
    )
    size = sql(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [TRAIL_TABLE],
    )[0][0]
    print(f"trail size (tables and primary keys): {size}")

    # The same rows in one plain table, indexed on `at` (what a row-by-row purge needs).
    sql(f"CREATE TABLE {PLAIN} AS SELECT * FROM {TRAIL_TABLE}")
    sql(f"ALTER TABLE {PLAIN} ADD PRIMARY KEY (paramedic_id, at)")
    sql(f"CREATE INDEX {PLAIN}_at ON {PLAIN} (at)")
    sql(f"VACUUM ANALYZE {PLAIN}")

    cutoff = now - timedelta(days=settings.LOCATION_RETENTION_DAYS)
    expiring = LocationFix.objects.filter(at__lt=cutoff.replace(hour=0, minute=0, second=0)).count()
    days_before = len(day_partitions(TRAIL_TABLE))

    def wal() -> int:
        return sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0]

    began, wal_before = time.perf_counter(), wal()
    result = location_trail_maintain(now=now)
    purge_ms, purge_wal = (time.perf_counter() - began) * 1000, wal() - wal_before
    remaining = LocationFix.objects.count()
    print(
        f"\npurge (daily partitions, LOCATION_RETENTION_DAYS={settings.LOCATION_RETENTION_DAYS}):"
        f" {purge_ms:.0f} ms, {purge_wal / 1024:.0f} KiB of WAL; dropped "
        f"{len(result.partitions_dropped)} of {days_before} day partitions ({expiring:,} "
        f"fixes), {result.rows_deleted} rows deleted from the default partition; "
        f"{remaining:,} fixes left; no VACUUM needed"
    )

    began, wal_before = time.perf_counter(), wal()
    plan = explain(f"DELETE FROM {PLAIN} WHERE at < %s", [cutoff.replace(hour=0, minute=0)])
    delete_ms, delete_wal = (time.perf_counter() - began) * 1000, wal() - wal_before
    began = time.perf_counter()
    sql(f"VACUUM {PLAIN}")
    vacuum_ms = (time.perf_counter() - began) * 1000
    print(
        "\nfor comparison, one DELETE of the same rows from an unpartitioned table: "
        f"{delete_ms:.0f} ms and {delete_wal / 1024 / 1024:.0f} MiB of WAL, then VACUUM "
        f"{vacuum_ms:.0f} ms (both grow with the rows; the drop does not):"
    )
    print(plan)

    print("\nthe purge's one row statement (the DEFAULT partition's leftovers):")
    print(explain(f"DELETE FROM {TRAIL_TABLE}{DEFAULT_SUFFIX} WHERE at < %s", [cutoff]))

    someone = Paramedic.objects.filter(badge_number="trail-0").values_list("pk", flat=True)[0]
    print("\na supervisor's read: one paramedic's last hour (GET .../locations):")
    print(
        explain(
            f"SELECT * FROM {TRAIL_TABLE} WHERE paramedic_id = %s AND at >= %s AND at < %s "
            "ORDER BY at LIMIT 51",
            [someone, now - timedelta(hours=1), now],
        )
    )
    sql(f"DROP TABLE {PLAIN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
