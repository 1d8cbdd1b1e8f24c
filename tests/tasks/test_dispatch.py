"""Nearest-available dispatch (design §6): ranking, widening search, /candidates, auto-assign.

Locations are set on the model fields directly (last_lat, last_lon and
last_location_at together: a check constraint wants all three or none).
"""

import math
import random
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus
from tasks.dispatch import haversine_km, rank_candidates
from tasks.models import EmergencyTask, TaskPriority, TaskStatus
from tests.factories import ParamedicFactory, TaskFactory, put_on_task, shift_for

BERLIN = (52.5200, 13.4050)
POTSDAM = (52.3906, 13.0645)
STALE_MINUTES = 15
CRITICAL_CERTS = {CertificationLevel.PARAMEDIC, CertificationLevel.CRITICAL_CARE}


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
        assert ranked[1].reasons[0] == f"{ranked[1].distance_km:.1f} km from the task"

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

    def test_it_ranks_stale_locations_after_fresh_ones(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        stale_close = located(*offset_km(BERLIN, north_km=1), age_min=STALE_MINUTES + 5)
        stale_far = located(*offset_km(BERLIN, north_km=2), age_min=STALE_MINUTES * 10)
        fresh_far = located(*offset_km(BERLIN, north_km=50), age_min=STALE_MINUTES - 5)
        fresh_farther = located(*offset_km(BERLIN, north_km=60), age_min=0)

        ranked = rank_candidates(task)

        assert ids(ranked) == [fresh_far.pk, fresh_farther.pk, stale_close.pk, stale_far.pk]
        assert [c.stale for c in ranked] == [False, False, True, True]
        for candidate in ranked[2:]:
            assert any("stale" in reason for reason in candidate.reasons), candidate.reasons
            assert candidate.location_age_s > STALE_MINUTES * 60
        for candidate in ranked[:2]:
            assert not any("stale" in reason for reason in candidate.reasons)
            assert candidate.location_age_s < STALE_MINUTES * 60

    def test_it_reads_the_stale_threshold_from_settings(self, db, settings):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        close = located(*offset_km(BERLIN, north_km=1), age_min=20)
        far = located(*offset_km(BERLIN, north_km=5), age_min=1)

        settings.STALE_LOCATION_MINUTES = 30
        assert ids(rank_candidates(task)) == [close.pk, far.pk]
        settings.STALE_LOCATION_MINUTES = 10
        assert ids(rank_candidates(task)) == [far.pk, close.pk]

    def test_it_flags_a_location_in_the_stale_tier_as_stale(self, db):
        """Tier and flag must agree, also a fraction of a second past the threshold.

        The tier is chosen with an exact timestamp comparison, but `stale` compares
        the *truncated* age in whole seconds (`int(age) > threshold`), so a fix that
        is 900.4 s old lands in the stale tier while being flagged fresh.
        """
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        now = timezone.now()
        fresh = located(*offset_km(BERLIN, north_km=30))
        just_stale = ParamedicFactory(
            last_lat=BERLIN[0],
            last_lon=BERLIN[1],
            last_location_at=now - timedelta(minutes=STALE_MINUTES, milliseconds=400),
        )

        with mock.patch("tasks.dispatch.timezone.now", return_value=now):
            ranked = rank_candidates(task)

        assert ids(ranked) == [fresh.pk, just_stale.pk]  # ranked as stale...
        assert ranked[1].stale is True  # ...so it must say so
        assert any("stale" in reason for reason in ranked[1].reasons)

    def test_it_prefers_advanced_certification_for_critical_tasks(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority=TaskPriority.CRITICAL)
        emr = located(*offset_km(BERLIN, north_km=1), certification_level=CertificationLevel.EMR)
        emt = located(*offset_km(BERLIN, north_km=2), certification_level=CertificationLevel.EMT)
        critical_care = located(
            *offset_km(BERLIN, north_km=30), certification_level=CertificationLevel.CRITICAL_CARE
        )
        paramedic = located(
            *offset_km(BERLIN, north_km=20), certification_level=CertificationLevel.PARAMEDIC
        )
        stale_paramedic = located(
            *offset_km(BERLIN, north_km=0.5),
            age_min=STALE_MINUTES * 3,
            certification_level=CertificationLevel.PARAMEDIC,
        )

        ranked = rank_candidates(task)

        # Fresh before stale first, then certification, then distance.
        assert ids(ranked) == [paramedic.pk, critical_care.pk, emr.pk, emt.pk, stale_paramedic.pk]
        assert [c.preferred_certification for c in ranked] == [True, True, False, False, True]
        assert any("preferred for a critical task" in r for r in ranked[0].reasons)
        assert any("ranked after paramedic/critical_care" in r for r in ranked[2].reasons)

    @pytest.mark.parametrize("priority", [TaskPriority.URGENT, TaskPriority.ROUTINE])
    def test_it_ignores_certification_for_non_critical_tasks(self, db, priority):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority=priority)
        emr = located(*offset_km(BERLIN, north_km=1), certification_level=CertificationLevel.EMR)
        critical_care = located(
            *offset_km(BERLIN, north_km=30), certification_level=CertificationLevel.CRITICAL_CARE
        )

        ranked = rank_candidates(task)

        assert ids(ranked) == [emr.pk, critical_care.pk]
        assert [c.preferred_certification for c in ranked] == [None, None]
        assert not any("certified" in r for c in ranked for r in c.reasons)

    def test_it_honours_the_limit(self, db):
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1])
        paramedics = [located(*offset_km(BERLIN, north_km=km)) for km in (1, 2, 3, 4, 5, 6)]

        assert ids(rank_candidates(task, limit=3)) == [p.pk for p in paramedics[:3]]


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
    """design §6 spelled out in Python over every paramedic, for comparison."""
    stale_before = now - timedelta(minutes=STALE_MINUTES)
    critical = task.priority == TaskPriority.CRITICAL
    keyed = []
    for p in Paramedic.objects.all():
        if p.status != ParamedicStatus.AVAILABLE or p.last_location_at is None:
            continue
        stale = p.last_location_at < stale_before
        unqualified = critical and p.certification_level not in CRITICAL_CERTS
        distance = haversine_km(task.lat, task.lon, p.last_lat, p.last_lon)
        keyed.append(((stale, unqualified, distance), p))
    keyed.sort(key=lambda pair: pair[0])
    return [p.pk for _, p in keyed[:limit]]


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
    for _ in range(10):
        lat, lon = random_point(350) if rng.random() < 0.7 else random_point(10)
        task = TaskFactory(lat=lat, lon=lon, priority=rng.choice(priorities))
        now = timezone.now()

        ranked = rank_candidates(task, limit=10)

        assert ids(ranked) == brute_force_ranking(task, limit=10, now=now), task.priority
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
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority=TaskPriority.CRITICAL)
        near = located(
            *offset_km(BERLIN, north_km=2), age_min=2, certification_level=CertificationLevel.EMT
        )
        potsdam = located(*POTSDAM, age_min=3, certification_level=CertificationLevel.PARAMEDIC)
        stale = located(*BERLIN, age_min=STALE_MINUTES + 20)

        response = supervisor_client.get(self.url(task))

        assert response.status_code == 200, response.content
        data = response.json()
        assert [row["paramedic"] for row in data] == [str(potsdam.pk), str(near.pk), str(stale.pk)]
        first = data[0]
        assert first["rank"] == 1
        assert first["badge_number"] == potsdam.badge_number
        assert first["certification_level"] == "paramedic"
        assert first["distance_km"] == pytest.approx(27.2, abs=0.5)
        assert 170 <= first["location_age_s"] <= 190
        assert first["stale"] is False
        assert first["preferred_certification"] is True
        assert isinstance(first["reasons"], list)
        assert first["reasons"]
        assert [row["rank"] for row in data] == [1, 2, 3]
        assert data[1]["certification_level"] == "emt"
        assert data[1]["preferred_certification"] is False
        assert data[2]["stale"] is True
        assert any("stale" in r for r in data[2]["reasons"])
        assert data[2]["location_age_s"] >= (STALE_MINUTES + 20) * 60

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
        task = TaskFactory(lat=BERLIN[0], lon=BERLIN[1], priority=TaskPriority.CRITICAL)
        rng = random.Random(7)

        def add(count):
            for _ in range(count):
                located(
                    *offset_km(BERLIN, north_km=rng.uniform(-50, 50), east_km=rng.uniform(-50, 50)),
                    age_min=rng.choice([1, STALE_MINUTES + 30]),
                    certification_level=rng.choice(CertificationLevel.values),
                )

        # A sparse roster costs the most: the JWT user (with its paramedic), its
        # groups, the task, whether any shift exists (no: no roster tiers), then one
        # nearest-in-box query per tier and search radius: 4 tiers (critical:
        # fresh/stale x preferred certification) x 6 radii.
        add(5)
        with django_assert_num_queries(4 + 4 * 6):
            assert supervisor_client.get(self.url(task, limit=10)).status_code == 200
        # A dense one fewer: the first tier holds 10 within 80 km (radii 5, 20, 80).
        add(195)
        with django_assert_num_queries(4 + 3):
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
