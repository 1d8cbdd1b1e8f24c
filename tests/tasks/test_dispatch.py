"""Dispatch (design §6, §18): ranking, plans, widening search, /candidates, auto-assign.

Locations are set on the model fields directly (last_lat, last_lon and
last_location_at together: a check constraint wants all three or none).
"""

import math
import random
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from integrations.models import RoadNode
from integrations.roads import load_road_graph
from integrations.routing import haversine_km
from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus
from tasks.dispatch import DISPATCH_POOL, rank_candidates
from tasks.models import EmergencyTask, TaskPriority, TaskStatus
from tests.factories import ParamedicFactory, TaskFactory, put_on_task, shift_for
from tests.roads import KAMPPI, SENATE_SQUARE, helsinki_graph

BERLIN = (52.5200, 13.4050)
POTSDAM = (52.3906, 13.0645)
STALE_MINUTES = 15


@pytest.fixture(autouse=True)
def _stale_after(settings):
    settings.STALE_LOCATION_MINUTES = STALE_MINUTES


def located(lat, lon, *, age_min=1.0, **fields) -> Paramedic:
    """An available paramedic whose last fix is `age_min` minutes old."""
    return ParamedicFactory(
        last_lat=lat,
        last_lon=lon,
        last_location_at=timezone.now() - timedelta(minutes=age_min),
        **fields,
    )


def ids(candidates) -> list:
    return [c.paramedic.pk for c in candidates]


def offset_km(origin, *, north_km=0.0, east_km=0.0) -> tuple[float, float]:
    """A point roughly `north_km`/`east_km` from `origin` (fine for short hops)."""
    lat, lon = origin
    return (
        lat + north_km / 111.195,
        lon + east_km / (111.195 * math.cos(math.radians(lat))),
    )


class TestRanking:
    def test_it_ranks_by_great_circle_distance(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        far = located(*offset_km(BERLIN, north_km=40))
        potsdam = located(*POTSDAM)
        near = located(*offset_km(BERLIN, east_km=3))

        ranked = rank_candidates(task)

        assert ids(ranked) == [near.pk, potsdam.pk, far.pk]
        assert [c.rank for c in ranked] == [1, 2, 3]
        # Published great-circle distance between the two city centres: ~27 km.
        assert ranked[1].distance_km == pytest.approx(27.2, abs=0.5)
        assert ranked[1].distance_km == pytest.approx(haversine_km(*BERLIN, *POTSDAM), abs=0.001)
        assert ranked[0].distance_km == pytest.approx(3.0, abs=0.05)
        assert ranked[1].reasons[0] == (
            f"arrives in about 37 min (straight-line estimate, {ranked[1].distance_km:.1f} km away)"
        )
        assert ranked[1].eta_seconds == round(ranked[1].distance_km * 1.35 / 60 * 3600)
        assert (ranked[1].meets_target, ranked[0].meets_target) == (False, True)
        assert "misses_target" in ranked[1].flags
        assert ranked[0].recommendation is not None
        assert ranked[1].recommendation is None

    def test_it_computes_haversine_for_known_pairs(self):
        assert haversine_km(*BERLIN, *BERLIN) == 0
        assert haversine_km(*BERLIN, *POTSDAM) == pytest.approx(27.2, abs=0.5)
        # A quarter of a meridian: pole to equator.
        assert haversine_km(90, 0, 0, 0) == pytest.approx(10007.5, abs=1)
        # Antipodes: the asin clamp keeps rounding from raising a domain error.
        assert haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=1)

    def test_it_excludes_unavailable_and_unlocated_paramedics(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        available = located(*offset_km(BERLIN, north_km=10))
        located(*BERLIN, status=ParamedicStatus.OFF_DUTY)
        busy = located(*BERLIN)
        put_on_task(busy)
        ParamedicFactory(last_lat=None, last_lon=None, last_location_at=None)

        assert ids(rank_candidates(task)) == [available.pk]

    def test_it_returns_nothing_when_nobody_is_available(self, db):
        task = TaskFactory()
        located(*BERLIN, status=ParamedicStatus.OFF_DUTY)
        ParamedicFactory()  # available, but no location

        assert rank_candidates(task) == []

    def test_it_ranks_a_stale_location_on_a_pessimistic_arrival(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        # 20 min old: it may have driven 15 km (at 45 km/h) since: about 1,296 s.
        stale_close = located(*offset_km(BERLIN, north_km=1), age_min=STALE_MINUTES + 5)
        fresh_10 = located(*offset_km(BERLIN, north_km=10), age_min=STALE_MINUTES - 5)  # 810 s
        fresh_20 = located(*offset_km(BERLIN, north_km=20), age_min=0)  # 1,620 s

        ranked = rank_candidates(task)

        assert ids(ranked) == [fresh_10.pk, stale_close.pk, fresh_20.pk]
        assert [c.stale for c in ranked] == [False, True, False]
        assert ranked[1].eta_seconds == pytest.approx((1 + 15) * 1.35 / 60 * 3600, abs=3)
        assert "stale_location" in ranked[1].flags
        assert any("widened for up to 15.0 km" in r for r in ranked[1].reasons)
        for candidate in (ranked[0], ranked[2]):
            assert "stale_location" not in candidate.flags
            assert any("location is fresh" in r for r in candidate.reasons)

    def test_it_reads_the_stale_threshold_from_settings(self, db, settings):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        close = located(*offset_km(BERLIN, north_km=1), age_min=20)
        far = located(*offset_km(BERLIN, north_km=5), age_min=1)

        settings.STALE_LOCATION_MINUTES = 30
        assert ids(rank_candidates(task)) == [close.pk, far.pk]
        settings.STALE_LOCATION_MINUTES = 10
        assert ids(rank_candidates(task)) == [far.pk, close.pk]

    def test_a_location_just_past_the_threshold_is_widened_and_flagged(self, db):
        """Widening and flag agree, also a fraction of a second past the threshold."""
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        now = timezone.now()
        fresh = located(*offset_km(BERLIN, north_km=12))  # 972 s
        just_stale = ParamedicFactory(
            last_lat=BERLIN[0],
            last_lon=BERLIN[1],
            last_location_at=now - timedelta(minutes=STALE_MINUTES, milliseconds=400),
        )  # 15 min at 45 km/h: 11.25 km, 911 s

        with mock.patch("tasks.dispatch.timezone.now", return_value=now):
            ranked = rank_candidates(task)

        assert ids(ranked) == [just_stale.pk, fresh.pk]
        assert ranked[0].stale is True
        assert ranked[0].eta_seconds == pytest.approx(11.25 * 1.35 / 60 * 3600, abs=2)
        assert any("stale" in reason for reason in ranked[0].reasons)

    def test_it_ranks_by_arrival_at_the_priority_speed(self, db):
        routine = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority=TaskPriority.ROUTINE)
        located(*offset_km(BERLIN, north_km=4))

        [candidate] = rank_candidates(routine)

        assert candidate.eta_seconds == pytest.approx(4 * 1.35 / 45 * 3600, abs=2)
        assert candidate.travel_source == "estimate"
        assert candidate.meets_target is True  # other: RESPONSE_TARGET_MINUTES, 9
        assert any("meets the 9 min target" in r for r in candidate.reasons)

    def test_it_honours_the_limit(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        paramedics = [located(*offset_km(BERLIN, north_km=km)) for km in (1, 2, 3, 4, 5, 6)]

        assert ids(rank_candidates(task, limit=3)) == [p.pk for p in paramedics[:3]]


class TestPlan:
    """The call type's plan (design §18): cardiac arrest asks for a paramedic, 8 min."""

    def arrest(self, **fields):
        return TaskFactory(
            lat=BERLIN[0], lon=BERLIN[1], call_type="cardiac_arrest", priority="critical", **fields
        )

    def crew(self, km, level, **fields):
        return located(*offset_km(BERLIN, north_km=km), certification_level=level, **fields)

    def test_a_qualified_crew_meeting_the_target_comes_first(self, db):
        task = self.arrest()
        emt = self.crew(1, CertificationLevel.EMT)  # 81 s
        paramedic = self.crew(5, CertificationLevel.PARAMEDIC)  # 405 s, within 480

        ranked = rank_candidates(task)

        assert ids(ranked) == [paramedic.pk, emt.pk]
        assert [c.preferred_certification for c in ranked] == [True, False]
        assert [c.meets_target for c in ranked] == [True, True]
        assert "meets the plan (paramedic or higher) and the target: preferred" in (
            ranked[0].reasons
        )
        assert "below_plan" in ranked[1].flags
        assert "certified emt: below the plan's paramedic" in ranked[1].reasons

    def test_past_the_target_a_qualified_crew_still_leads_within_the_extra_minutes(
        self, db, settings
    ):
        settings.QUALIFIED_EXTRA_MINUTES = 3
        task = self.arrest()
        emt = self.crew(5, CertificationLevel.EMT)  # 405 s
        critical_care = self.crew(7, CertificationLevel.CRITICAL_CARE)  # 567 s: +162 s

        ranked = rank_candidates(task)

        assert ids(ranked) == [critical_care.pk, emt.pk]
        assert ranked[0].meets_target is False
        assert any("within 3 min of the fastest: preferred" in r for r in ranked[0].reasons)
        settings.QUALIFIED_EXTRA_MINUTES = 2
        assert ids(rank_candidates(task)) == [emt.pk, critical_care.pk]

    def test_too_far_a_qualified_crew_gives_way_to_the_fastest_with_an_intercept(self, db):
        """The issue's case: an EMT 3.7 km away, a paramedic 11 km away."""
        task = self.arrest()
        far_off_emr = self.crew(30, CertificationLevel.EMR)
        emt = self.crew(3.7, CertificationLevel.EMT, badge_number="DEMO-016")  # 300 s
        paramedic = self.crew(11, CertificationLevel.PARAMEDIC, badge_number="DEMO-014")  # 891 s

        ranked = rank_candidates(task)

        assert ids(ranked) == [emt.pk, paramedic.pk, far_off_emr.pk]
        assert (
            "qualified responder 10 min further: consider an intercept "
            "(DEMO-014, paramedic or higher)"
        ) in ranked[0].reasons
        assert ranked[0].recommendation.startswith("DEMO-016 ")
        assert "consider an intercept" in ranked[0].recommendation
        assert "meets the target" in ranked[0].recommendation

    def test_with_nobody_qualified_the_fastest_is_recommended_and_says_so(self, db):
        task = self.arrest()
        emt = self.crew(2, CertificationLevel.EMT)

        [candidate] = rank_candidates(task)

        assert candidate.paramedic == emt
        assert "no paramedic or higher available: the fastest crew" in candidate.reasons

    def test_a_plan_without_certification_ranks_by_arrival_alone(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority="critical")  # other
        emr = self.crew(1, CertificationLevel.EMR)
        critical_care = self.crew(3, CertificationLevel.CRITICAL_CARE)

        ranked = rank_candidates(task)

        assert ids(ranked) == [emr.pk, critical_care.pk]
        assert [c.preferred_certification for c in ranked] == [None, None]
        assert not any("below_plan" in c.flags for c in ranked)

    def test_a_qualified_crew_beyond_the_nearest_pool_is_still_found(self, db):
        task = self.arrest()
        for i in range(DISPATCH_POOL + 5):
            self.crew(0.5 + i * 0.1, CertificationLevel.EMT)
        paramedic = self.crew(5, CertificationLevel.PARAMEDIC)  # 405 s: meets 8 min

        ranked = rank_candidates(task, limit=3)

        assert ranked[0].paramedic == paramedic

    def test_the_top_does_not_depend_on_the_limit(self, db):
        task = self.arrest()
        rng = random.Random(5)
        for _ in range(40):
            self.crew(rng.uniform(0.5, 12), rng.choice(CertificationLevel.values))

        assert ids(rank_candidates(task, limit=10))[:5] == ids(rank_candidates(task, limit=5))


class TestWideningSearch:
    def test_it_finds_a_single_paramedic_far_away(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        far = located(25.0, 13.4)  # the Sahara, ~3060 km south

        [candidate] = rank_candidates(task)

        assert candidate.paramedic.pk == far.pk
        assert candidate.distance_km == pytest.approx(3060, abs=10)
        assert candidate.distance_km > 3000

    def test_it_finds_the_other_side_of_the_globe(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        antipode = located(-52.52, -166.595)

        [candidate] = rank_candidates(task)

        assert candidate.paramedic.pk == antipode.pk
        assert candidate.distance_km == pytest.approx(20015, abs=2)

    def test_it_searches_across_the_antimeridian(self, db):
        task = TaskFactory(lat=10.0, lon=179.9)
        across = located(10.0, -179.9)  # ~22 km east, across the date line
        same_side = located(10.0, 179.5)  # ~44 km west

        ranked = rank_candidates(task)

        assert ids(ranked) == [across.pk, same_side.pk]
        assert ranked[0].distance_km == pytest.approx(21.9, abs=0.2)

    def test_it_searches_across_the_antimeridian_westwards(self, db):
        task = TaskFactory(lat=-17.0, lon=-179.95)
        across = located(-17.0, 179.97)
        located(-17.0, -179.0)  # ~100 km east

        assert ids(rank_candidates(task, limit=1)) == [across.pk]

    def test_it_searches_across_the_north_pole(self, db):
        task = TaskFactory(lat=89.95, lon=0.0)
        over_the_pole = located(89.95, 180.0)  # ~11 km away, on the other meridian
        same_meridian = located(89.7, 0.0)  # ~28 km south

        ranked = rank_candidates(task)

        assert ids(ranked) == [over_the_pole.pk, same_meridian.pk]
        assert ranked[0].distance_km == pytest.approx(11.1, abs=0.2)

    def test_it_searches_near_the_south_pole(self, db):
        task = TaskFactory(lat=-89.99, lon=45.0)
        near = located(-89.95, -135.0)
        located(-89.0, 45.0)

        assert ids(rank_candidates(task, limit=1)) == [near.pk]

    def test_it_finds_the_nearest_near_a_pole_when_it_is_east_of_the_box(self, db):
        """Bug: near a pole the bounding box is narrower than the search circle.

        For radius 20 km at lat 89.8 the box spans lon ±51.5°, but the circle
        reaches ±64°: `dlon = r / (111.32 · cos lat)` is a flat-earth width, while
        on a sphere the widest longitude is asin(sin(r/R) / cos lat), reached
        north of the task. A paramedic 18.3 km away at lon 55 lies outside the
        box, and one 18.9 km away inside it fills limit=1, so the search stops.
        """
        task = TaskFactory(lat=89.8, lon=0.0)
        nearest = located(89.9, 55.0)
        inside_box = located(89.63, 0.0)
        assert haversine_km(89.8, 0, 89.9, 55) < haversine_km(89.8, 0, 89.63, 0) < 20

        assert ids(rank_candidates(task, limit=1)) == [nearest.pk]
        assert ids(rank_candidates(task, limit=2)) == [nearest.pk, inside_box.pk]

    def test_it_finds_the_nearest_just_inside_a_search_radius(self, db):
        """Bug: the box uses 111.32 km per degree of latitude, the distance R = 6371.0088 km.

        A degree of great circle is 2πR/360 = 111.195 km, so the 5 km box spans
        ±0.044916° while the 5 km circle reaches ±0.044966°. A paramedic 4.995 km
        due north is inside the circle but outside the box; one 4.996 km to the
        north-east is inside both and is returned first.
        """
        task = TaskFactory(lat=0.0, lon=0.0)
        due_north = located(0.04492, 0.0)
        north_east = located(0.03, 0.03345)
        assert haversine_km(0, 0, 0.04492, 0) < haversine_km(0, 0, 0.03, 0.03345) < 5

        assert ids(rank_candidates(task, limit=1)) == [due_north.pk]
        # With room for two, the 5 km search falls short and widens: right order.
        assert ids(rank_candidates(task, limit=2)) == [due_north.pk, north_east.pk]


def brute_force_ranking(task: EmergencyTask, *, limit: int, now) -> list:
    """Design §18 spelled out in Python over every paramedic, for comparison."""
    stale_before = now - timedelta(minutes=STALE_MINUTES)
    emergency = task.priority != TaskPriority.ROUTINE
    speed = 60 if emergency else 45
    levels = task.call_type.qualified_levels
    timed = []
    for p in Paramedic.objects.all():
        if p.status != ParamedicStatus.AVAILABLE or p.last_location_at is None:
            continue
        distance = haversine_km(task.lat, task.lon, p.last_lat, p.last_lon)
        if p.last_location_at < stale_before:
            distance += (now - p.last_location_at).total_seconds() / 3600 * 45
        eta = distance * 1.35 / speed * 3600
        timed.append((eta, p.certification_level in (levels or ()), p))
    timed.sort(key=lambda row: row[0])
    if levels and timed:
        fastest = timed[0][0]
        preferred = [
            row
            for row in timed
            if row[1] and (row[0] <= task.target_minutes * 60 or row[0] <= fastest + 180)
        ]
        timed = preferred + [row for row in timed if row not in preferred]
    return [p.pk for _, _, p in timed[:limit]]


def test_it_matches_a_brute_force_ranking(db):
    rng = random.Random(7)
    centre = (51.0, 10.0)  # Germany, roughly
    certifications = list(CertificationLevel.values)

    def random_point(spread_km):
        return offset_km(
            centre,
            north_km=rng.uniform(-spread_km, spread_km),
            east_km=rng.uniform(-spread_km, spread_km),
        )

    for n in range(300):
        # Most spread over a 600 km box, some packed into a city so the
        # narrow radii fill up too.
        lat, lon = random_point(300) if n % 5 else random_point(15)
        roll = rng.random()
        fields = {"certification_level": rng.choice(certifications)}
        if roll < 0.08:
            ParamedicFactory(**fields)  # never reported a location
            continue
        # Clear of the threshold on either side; the boundary has its own test.
        age_min = (
            rng.uniform(0, STALE_MINUTES - 1)
            if rng.random() < 0.7
            else rng.uniform(STALE_MINUTES + 1, 600)
        )
        if roll < 0.28:
            fields["status"] = ParamedicStatus.OFF_DUTY
        paramedic = located(lat, lon, age_min=age_min, **fields)
        if roll > 0.93:
            put_on_task(paramedic, lat=lat, lon=lon)

    priorities = list(TaskPriority.values)
    plans = ["other", "cardiac_arrest", "stroke", "breathing_problem"]
    for _ in range(12):
        lat, lon = random_point(350) if rng.random() < 0.7 else random_point(10)
        task = TaskFactory(
            lat=lat, lon=lon, priority=rng.choice(priorities), call_type=rng.choice(plans)
        )
        now = timezone.now()

        ranked = rank_candidates(task, limit=10)

        assert ids(ranked) == brute_force_ranking(task, limit=10, now=now), (
            task.priority,
            task.call_type_id,
        )
        for candidate in ranked:
            p = candidate.paramedic
            assert candidate.distance_km == pytest.approx(
                haversine_km(task.lat, task.lon, p.last_lat, p.last_lon), abs=0.001
            )
            assert candidate.stale == (candidate.location_age_s > STALE_MINUTES * 60)


class TestCandidatesEndpoint:
    def url(self, task, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"/api/v1/tasks/{task.pk}/candidates" + (f"?{query}" if query else "")

    def test_it_lists_ranked_candidates_with_reasons(self, supervisor_client, db):
        task = TaskFactory(
            lat=BERLIN[0], lon=BERLIN[1], priority="critical", call_type="cardiac_arrest"
        )
        near = located(
            *offset_km(BERLIN, north_km=2), age_min=2, certification_level=CertificationLevel.EMT
        )
        potsdam = located(*POTSDAM, age_min=3, certification_level=CertificationLevel.PARAMEDIC)
        # 35 min old: up to 26 km since, so about 35 min away.
        stale = located(*BERLIN, age_min=STALE_MINUTES + 20, certification_level="emt")

        response = supervisor_client.get(self.url(task))

        assert response.status_code == 200, response.content
        data = response.json()
        assert [row["paramedic"] for row in data] == [str(near.pk), str(stale.pk), str(potsdam.pk)]
        first = data[0]
        assert first["rank"] == 1
        assert first["badge_number"] == near.badge_number
        assert first["certification_level"] == "emt"
        assert first["distance_km"] == pytest.approx(2.0, abs=0.05)
        assert first["eta_seconds"] == round(first["distance_km"] * 1.35 / 60 * 3600)
        assert (first["meets_target"], first["travel_source"]) == (True, "estimate")
        assert 110 <= first["location_age_s"] <= 130
        assert (first["stale"], first["preferred_certification"]) == (False, False)
        assert first["flags"] == ["below_plan"]
        assert any("consider an intercept" in r for r in first["reasons"])
        assert "consider an intercept" in first["recommendation"]
        assert [row["rank"] for row in data] == [1, 2, 3]
        assert data[1]["stale"] is True
        assert data[1]["flags"] == ["stale_location", "below_plan", "misses_target"]
        assert data[1]["location_age_s"] >= (STALE_MINUTES + 20) * 60
        last = data[2]
        assert (last["preferred_certification"], last["meets_target"]) == (True, False)
        assert last["flags"] == ["misses_target"]
        assert last["distance_km"] == pytest.approx(27.2, abs=0.5)
        assert [row["recommendation"] for row in data[1:]] == [None, None]

    def test_it_honours_limit(self, supervisor_client, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        for km in range(1, 6):
            located(*offset_km(BERLIN, east_km=km))

        two = supervisor_client.get(self.url(task, limit=2)).json()
        everyone = supervisor_client.get(self.url(task)).json()

        assert [row["rank"] for row in two] == [1, 2]
        assert [row["paramedic"] for row in two] == [row["paramedic"] for row in everyone[:2]]
        assert len(everyone) == 5
        # A limit that is not 1 to 50 is invalid input, as the schema says.
        for bogus in ("lots", "0", "51", "-1", ""):
            response = supervisor_client.get(self.url(task, limit=bogus))
            assert response.status_code == 400, bogus
            assert "limit" in response.json()["errors"]
        # The list's own parameters are not this operation's.
        assert supervisor_client.get(self.url(task, page=1)).status_code == 400

    def test_it_answers_an_empty_list_when_nobody_is_available(self, supervisor_client, db):
        task = TaskFactory()
        response = supervisor_client.get(self.url(task))
        assert response.status_code == 200
        assert response.json() == []

    def test_it_keeps_query_count_flat(self, supervisor_client, django_assert_num_queries, db):
        task = TaskFactory(
            lat=BERLIN[0], lon=BERLIN[1], priority="critical", call_type="cardiac_arrest"
        )
        rng = random.Random(7)

        def add(count, spread_km):
            for _ in range(count):
                located(
                    *offset_km(
                        BERLIN,
                        north_km=rng.uniform(-spread_km, spread_km),
                        east_km=rng.uniform(-spread_km, spread_km),
                    ),
                    age_min=rng.choice([1, STALE_MINUTES + 30]),
                    certification_level=rng.choice(CertificationLevel.values),
                )

        # A sparse roster costs the most: the JWT user (with its paramedic), its
        # groups, the task, its call type, whether any shift exists (no: one roster
        # tier), then the nearest in the box, once per search radius (6), and the
        # nearest with the plan's certification, once per radius (6). The travel
        # estimate asks the database nothing.
        add(5, 50)
        with django_assert_num_queries(5 + 6 + 6):
            assert supervisor_client.get(self.url(task, limit=10)).status_code == 200
        # A dense one fewer: the pool of 25 within 5 km (one radius), the 25 qualified
        # within 20 km (radii 5 and 20).
        add(300, 15)
        with django_assert_num_queries(5 + 1 + 2):
            response = supervisor_client.get(self.url(task, limit=10))
        assert len(response.json()) == 10


class TestAutoAssign:
    def url(self, task):
        return f"/api/v1/tasks/{task.pk}/assign"

    def test_it_assigns_the_top_candidate(self, supervisor_client, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        top = located(*offset_km(BERLIN, north_km=2))
        located(*POTSDAM)
        located(*BERLIN, status=ParamedicStatus.OFF_DUTY)
        [best] = rank_candidates(task, limit=1)
        assert best.paramedic.pk == top.pk

        response = supervisor_client.post(self.url(task), {}, format="json")

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "assigned"
        assert response.json()["paramedic"] == str(top.pk)
        task.refresh_from_db()
        top.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED
        assert task.paramedic_id == top.pk
        assert top.status == ParamedicStatus.ON_TASK
        assert top.current_task_id == task.pk

    def test_it_moves_on_to_the_next_candidate_for_the_next_task(self, supervisor_client, db):
        first_task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        second_task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        top = located(*offset_km(BERLIN, north_km=2))
        runner_up = located(*POTSDAM)

        supervisor_client.post(self.url(first_task), {}, format="json")
        response = supervisor_client.post(self.url(second_task), {}, format="json")

        assert response.status_code == 200, response.content
        assert response.json()["paramedic"] == str(runner_up.pk)
        top.refresh_from_db()
        assert top.current_task_id == first_task.pk

    def test_it_answers_409_when_nobody_is_available(self, supervisor_client, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        located(*BERLIN, status=ParamedicStatus.OFF_DUTY)
        ParamedicFactory()  # available, location unknown

        response = supervisor_client.post(self.url(task), {}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "no_available_paramedic"
        task.refresh_from_db()
        assert task.status == TaskStatus.PENDING
        assert task.paramedic_id is None
        assert not Paramedic.objects.filter(status=ParamedicStatus.ON_TASK).exists()


class TestRoster:
    """design §14: with shifts planned, those on shift rank first; off_shift is flagged."""

    @staticmethod
    def on_shift(*paramedics, offset_h=0):
        start = timezone.now() - timedelta(hours=1) + timedelta(hours=offset_h)
        return shift_for(*paramedics, starts_at=start, ends_at=start + timedelta(hours=8))

    def test_without_shifts_the_ranking_is_unchanged(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        near = located(*offset_km(BERLIN, east_km=1))
        far = located(*offset_km(BERLIN, east_km=9))
        ranked = rank_candidates(task)
        assert ids(ranked) == [near.pk, far.pk]
        assert not any(c.off_shift for c in ranked)

    def test_on_shift_ranks_before_a_nearer_one_outside_its_shift(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        near_off_shift = located(*offset_km(BERLIN, east_km=1))
        far_on_shift = located(*offset_km(BERLIN, east_km=9))
        unplanned = located(*offset_km(BERLIN, east_km=5))  # no shifts: not the roster's
        self.on_shift(far_on_shift)
        self.on_shift(near_off_shift, offset_h=10)  # its shift is tonight

        ranked = rank_candidates(task)

        assert ids(ranked) == [unplanned.pk, far_on_shift.pk, near_off_shift.pk]
        assert [c.off_shift for c in ranked] == [False, False, True]
        assert "on shift now" in ranked[1].reasons
        assert any(r.startswith("off_shift") for r in ranked[2].reasons)

    def test_the_roster_split_comes_before_freshness(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        fresh_off_shift = located(*offset_km(BERLIN, east_km=1))
        stale_on_shift = located(*offset_km(BERLIN, east_km=2), age_min=STALE_MINUTES + 10)
        self.on_shift(stale_on_shift)
        self.on_shift(fresh_off_shift, offset_h=-20)  # yesterday's shift
        ranked = rank_candidates(task)
        assert ids(ranked) == [stale_on_shift.pk, fresh_off_shift.pk]
        assert (ranked[0].stale, ranked[1].off_shift) == (True, True)

    def test_candidates_show_off_shift(self, supervisor_client, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        medic = located(*offset_km(BERLIN, east_km=1))
        self.on_shift(medic, offset_h=10)
        response = supervisor_client.get(f"/api/v1/tasks/{task.pk}/candidates")
        assert response.status_code == 200
        [row] = response.json()
        assert (row["paramedic"], row["off_shift"]) == (str(medic.pk), True)
        assert any(r.startswith("off_shift") for r in row["reasons"])

    def test_auto_assign_takes_the_one_on_shift(self, supervisor_client, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        nearer = located(*offset_km(BERLIN, east_km=1))
        on_shift = located(*offset_km(BERLIN, east_km=9))
        self.on_shift(on_shift)
        self.on_shift(nearer, offset_h=10)  # its shift is tonight
        response = supervisor_client.post(f"/api/v1/tasks/{task.pk}/assign", {}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["paramedic"] == str(on_shift.pk)


@pytest.mark.pgrouting
class TestRoadRanking:
    """ROUTING=pgrouting over the real Helsinki graph (tests/roads.py)."""

    @pytest.fixture(autouse=True)
    def helsinki(self, settings, db):
        load_road_graph(helsinki_graph())
        settings.ROUTING = "pgrouting"
        return list(RoadNode.objects.values_list("lat", "lon"))

    def test_it_ranks_by_road_and_falls_back_off_the_graph(
        self, helsinki, django_assert_num_queries
    ):
        task = TaskFactory(lat=SENATE_SQUARE[0], lon=SENATE_SQUARE[1], priority="critical")
        rng = random.Random(11)
        on_graph = [located(*rng.choice(helsinki)) for _ in range(30)]
        berlin = located(*BERLIN)

        # Whether any shift exists, the 25 nearest (one radius), then the road times:
        # SAVEPOINT, snap all, one pgr_dijkstraCost, RELEASE.
        with django_assert_num_queries(2 + 4):
            ranked = rank_candidates(task, limit=10)

        assert len(ranked) == 10
        assert berlin.pk not in ids(ranked)  # 1,100 km away: beyond the pool of 25
        road = [c for c in ranked if c.travel_source == "road"]
        assert len(road) >= 5
        assert [c.eta_seconds for c in ranked] == sorted(c.eta_seconds for c in ranked)
        assert all("by road" in c.reasons[0] for c in road)
        estimated = [c for c in ranked if c.travel_source == "estimate"]
        for c in estimated:
            assert "no_road_time" in c.flags
            assert any("straight-line estimate" in r for r in c.reasons[1:2])
        assert {c.paramedic.pk for c in ranked} <= {p.pk for p in on_graph} | {berlin.pk}

    def test_a_crew_off_the_graph_is_timed_by_estimate_with_the_reason(self, helsinki):
        task = TaskFactory(lat=SENATE_SQUARE[0], lon=SENATE_SQUARE[1], priority="critical")
        near = located(*KAMPPI)
        off_graph = located(60.2100, 24.9500)  # 4.5 km north, beyond the extract

        ranked = rank_candidates(task)

        assert ids(ranked) == [near.pk, off_graph.pk]
        assert (ranked[0].travel_source, ranked[1].travel_source) == ("road", "estimate")
        assert "off the road graph: straight-line estimate" in ranked[1].reasons
        assert ranked[1].flags == ["no_road_time"]
