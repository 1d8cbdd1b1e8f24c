"""Benchmark nearest-available dispatch on PostgreSQL (design §6).

    .venv/bin/python bench/dispatch.py

Uses DATABASE_URL, or a dedicated database `paramedic_bench` on the local
server, which it creates if missing and wipes between sizes: never point it at
a database you care about. For 10,000 and 100,000 paramedics spread over a
600 km x 600 km box around the centre of Germany it times:

- rank_candidates(task, limit=10) on its own, and
- task_assign(paramedic_id=None), the auto-assignment (ranking plus claim,
  save, history), with each task cancelled afterwards (untimed) so its
  paramedic is free again.

The point is the ratio 100k/10k: the search is indexed, so ten times the roster
should cost well under twice the time. Runs in about a minute; stops by itself.
"""

import os
import random
import statistics
import sys
import time
from datetime import timedelta

from common import ensure_database, postgres_banner, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench"
SIZES = (10_000, 100_000)
ASSIGNMENTS = 200  # timed auto-assignments per size
RANKINGS = 200  # timed rankings per size
WARM_UP = 20
BATCH = 5_000
SEED = 7
PREFIX = "bench-"  # every user the bench creates; the wipe deletes only these

# 600 km x 600 km around the centre of Germany, with towns where most people
# (and so most paramedics and emergencies) are.
CENTRE = (51.16, 10.45)
HALF_SIDE_KM = 300
TOWNS = 25
TOWN_SIGMA_KM = 12
KM_PER_DEGREE = 111.195


class Region:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.towns = [self.uniform() for _ in range(TOWNS)]

    def _offset(self, north_km: float, east_km: float, origin=CENTRE) -> tuple[float, float]:
        import math

        lat = origin[0] + north_km / KM_PER_DEGREE
        lon = origin[1] + east_km / (KM_PER_DEGREE * math.cos(math.radians(origin[0])))
        return lat, lon

    def uniform(self) -> tuple[float, float]:
        r = self.rng.uniform
        return self._offset(r(-HALF_SIDE_KM, HALF_SIDE_KM), r(-HALF_SIDE_KM, HALF_SIDE_KM))

    def point(self) -> tuple[float, float]:
        """70 % around a town, 30 % anywhere in the box."""
        if self.rng.random() < 0.3:
            return self.uniform()
        town = self.rng.choice(self.towns)
        g = self.rng.gauss
        return self._offset(g(0, TOWN_SIGMA_KM), g(0, TOWN_SIGMA_KM), origin=town)


def wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tasks_taskhistory, tasks_emergencytask, paramedics_paramedic CASCADE"
        )
        cursor.execute("DELETE FROM auth_user WHERE username LIKE %s", [PREFIX + "%"])


def populate(size: int, region: Region, rng: random.Random) -> dict[str, int]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus, Station

    User = get_user_model()
    now = timezone.now()
    stale_min = settings.STALE_LOCATION_MINUTES
    certifications = list(CertificationLevel.values)
    cert_weights = [10, 40, 15, 30, 5]  # emr, emt, aemt, paramedic, critical_care
    counts = {"available_fresh": 0, "available_stale": 0, "no_location": 0, "off_duty": 0}

    for start in range(0, size, BATCH):
        numbers = range(start, min(size, start + BATCH))
        # "!" is an unusable password: no hashing cost, no way to log in.
        users = User.objects.bulk_create(
            User(
                username=f"{PREFIX}{n}",
                password="!",  # noqa: S106 - the unusable marker, not a secret
                email=f"{PREFIX}{n}@bench.example.org",
            )
            for n in numbers
        )
        paramedics = []
        for n, user in zip(numbers, users, strict=True):
            roll = rng.random()
            lat, lon = region.point()
            if roll < 0.60:
                kind, status, age = "available_fresh", "available", rng.uniform(0, stale_min - 1)
            elif roll < 0.70:
                kind, status, age = "available_stale", "available", rng.uniform(stale_min + 1, 480)
            elif roll < 0.75:
                kind, status, age = "no_location", "available", None
            else:
                kind, status, age = "off_duty", "off_duty", rng.uniform(0, 24 * 60)
            counts[kind] += 1
            located = age is not None
            paramedics.append(
                Paramedic(
                    user=user,
                    badge_number=f"BN-{n}",
                    first_name="Bench",
                    last_name=f"Medic {n}",
                    email=f"bn-{n}@bench.example.org",
                    certification_level=rng.choices(certifications, cert_weights)[0],
                    status=ParamedicStatus(status),
                    base_station_id=f"Station {n % 200}",
                    last_lat=lat if located else None,
                    last_lon=lon if located else None,
                    last_location_at=now - timedelta(minutes=age) if located else None,
                )
            )
        Station.objects.bulk_create(
            [Station(code=f"Station {n}", name=f"Station {n}") for n in range(200)],
            ignore_conflicts=True,
        )
        Paramedic.objects.bulk_create(paramedics)

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return counts


def new_task(region: Region, rng: random.Random, actor, n: int):
    from tasks.models import TaskPriority
    from tasks.services import task_create

    lat, lon = region.point()
    priority = rng.choices(list(TaskPriority.values), [20, 40, 40])[0]  # critical, urgent, routine
    return task_create(
        request_id=f"{PREFIX}{n}",
        patient_id=f"patient-{n}",
        priority=priority,
        lat=lat,
        lon=lon,
        created_by=actor,
    ).task


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def run_size(size: int, actor_name: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tasks.dispatch import rank_candidates
    from tasks.services import NoCandidate, task_assign, task_cancel

    rng = random.Random(SEED)
    region = Region(rng)
    wipe()
    started = time.perf_counter()
    counts = populate(size, region, rng)
    load_s = time.perf_counter() - started
    actor, _ = get_user_model().objects.get_or_create(username=actor_name)

    serial = iter(range(10**9))

    # Rankings: pending tasks, never assigned.
    tasks = [new_task(region, rng, actor, next(serial)) for _ in range(WARM_UP + RANKINGS)]
    rank_times, queries = [], []
    for i, task in enumerate(tasks):
        t0 = time.perf_counter()
        rank_candidates(task, limit=10)
        if i >= WARM_UP:
            rank_times.append(time.perf_counter() - t0)
    for task in tasks[:20]:  # how many tier/radius queries a ranking takes
        with CaptureQueriesContext(connection) as captured:
            rank_candidates(task, limit=10)
        queries.append(len(captured.captured_queries))

    # Auto-assignments: only task_assign is timed; cancelling frees the paramedic.
    assign_times, no_candidate = [], 0
    for i in range(WARM_UP + ASSIGNMENTS):
        task = new_task(region, rng, actor, next(serial))
        t0 = time.perf_counter()
        try:
            task_assign(task_id=task.pk, actor=actor, paramedic_id=None)
        except NoCandidate:
            no_candidate += 1
            continue
        elapsed = time.perf_counter() - t0
        if i >= WARM_UP:
            assign_times.append(elapsed)
        task_cancel(task_id=task.pk, actor=actor, reason="bench")

    return {
        "size": size,
        "counts": counts,
        "load_s": load_s,
        "assign": ms(assign_times),
        "rank": ms(rank_times),
        "queries": statistics.mean(queries),
        "no_candidate": no_candidate,
        "region": region,
        "actor": actor,
    }


def explain_tier_query(result: dict) -> str:
    """EXPLAIN ANALYZE of the first tier at the first radius, as _nearest_in_tier builds it."""
    from django.conf import settings
    from django.utils import timezone

    from paramedics.models import Paramedic, ParamedicStatus
    from tasks.dispatch import SEARCH_RADII_KM, _bounding_box, _distance_expression, _tiers

    rng = random.Random(SEED + 1)
    task = new_task(result["region"], rng, result["actor"], 10**8)
    stale_before = timezone.now() - timedelta(minutes=settings.STALE_LOCATION_MINUTES)
    tier = _tiers(task, stale_before)[0]
    radius = SEARCH_RADII_KM[0]
    queryset = (
        Paramedic.objects.filter(tier, status=ParamedicStatus.AVAILABLE, last_lat__isnull=False)
        .annotate(distance_km=_distance_expression(task.lat, task.lon))
        .filter(_bounding_box(task.lat, task.lon, radius))
        .filter(distance_km__lte=radius)
        .order_by("distance_km", "pk")[:10]
    )
    header = (
        f"task {task.priority} at ({task.lat:.4f}, {task.lon:.4f}), "
        f"tier 1 of {len(_tiers(task, stale_before))}, radius {radius} km"
    )
    return header + "\n" + queryset.explain(analyze=True, buffers=True)


def main() -> None:
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"bench/dispatch.py needs PostgreSQL, got DATABASE_URL={url}")
    ensure_database(url)
    setup_django(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            # DEBUG would keep every query in memory and slow the loop down.
            "DJANGO_DEBUG": "false",
        },
        # One INFO line per task event would drown the table.
        quiet=("tasks",),
    )
    print(postgres_banner())
    print(f"{ASSIGNMENTS} auto-assignments and {RANKINGS} rankings (limit 10) per size\n")

    results = []
    for size in SIZES:
        result = run_size(size, f"{PREFIX}dispatcher")
        c = result["counts"]
        print(
            f"{size:>7,} paramedics loaded in {result['load_s']:.1f} s: "
            f"{c['available_fresh']:,} available/fresh, {c['available_stale']:,} available/stale, "
            f"{c['no_location']:,} available/no location, {c['off_duty']:,} off duty"
        )
        results.append(result)
    explain = explain_tier_query(results[-1])

    print()
    print(
        "| paramedics | assign median ms | assign p95 ms | rank median ms | rank p95 ms "
        "| queries/rank |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['size']:,} | {r['assign'][0]:.2f} | {r['assign'][1]:.2f} "
            f"| {r['rank'][0]:.2f} | {r['rank'][1]:.2f} | {r['queries']:.1f} |"
        )
    small, large = results[0], results[-1]
    print(
        f"\nratio {large['size'] // 1000}k/{small['size'] // 1000}k (median): "
        f"assign {large['assign'][0] / small['assign'][0]:.2f}x, "
        f"rank {large['rank'][0] / small['rank'][0]:.2f}x  (goal: well under 2x)"
    )
    if any(r["no_candidate"] for r in results):
        print("no candidate for", [r["no_candidate"] for r in results], "tasks")
    print(f"\nEXPLAIN ANALYZE at {large['size']:,}: {explain}")


if __name__ == "__main__":
    main()
