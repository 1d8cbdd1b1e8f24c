"""Travel time behind one interface (design §18): the straight-line estimate, and road
times from pgRouting over the real Helsinki graph, with their fallbacks."""

import random

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.models import RoadEdge, RoadNode
from integrations.roads import RoadGraph, RoadsUnavailable, load_road_graph, road_speed_kmh
from integrations.routing import haversine_km, travel_seconds
from tests.roads import KAMPPI, SENATE_SQUARE, WEST_EDGE, helsinki_graph, helsinki_pbf

BERLIN = (52.5200, 13.4050)
POTSDAM = (52.3906, 13.0645)


class TestEstimate:
    def test_it_is_the_detoured_great_circle_at_the_priority_speed(self, settings):
        settings.ROUTING_DETOUR_FACTOR = 1.35
        settings.ROUTING_EMERGENCY_SPEED_KMH = 60
        settings.ROUTING_SPEED_KMH = 45
        distance = haversine_km(*BERLIN, *POTSDAM)

        [siren] = travel_seconds([POTSDAM], BERLIN, emergency=True)
        [routine] = travel_seconds([POTSDAM], BERLIN, emergency=False)

        assert siren.source == routine.source == "estimate"
        assert siren.seconds == pytest.approx(distance * 1.35 / 60 * 3600)
        assert routine.seconds == pytest.approx(distance * 1.35 / 45 * 3600)
        assert siren.distance_km == pytest.approx(distance)
        assert siren.note == ""

    def test_it_asks_nothing_of_the_database(self, django_assert_num_queries, db):
        with django_assert_num_queries(0):
            assert len(travel_seconds([POTSDAM] * 50, BERLIN, emergency=True)) == 50

    def test_great_circle_distances(self):
        assert haversine_km(*BERLIN, *BERLIN) == 0
        assert haversine_km(*BERLIN, *POTSDAM) == pytest.approx(27.2, abs=0.5)
        assert haversine_km(90, 0, 0, 0) == pytest.approx(10007.5, abs=1)
        assert haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=1)


@pytest.mark.parametrize(
    ("maxspeed", "highway", "kmh"),
    [
        ("40", "secondary", 40),
        ("30 mph", "residential", 48.28),
        ("FI:urban", "primary", 60),
        (None, "residential", 30),
        (float("nan"), "primary_link", 40),
        ("0", "track", 30),
        (None, None, 30),
    ],
)
def test_a_roads_speed_is_its_limit_or_its_class(maxspeed, highway, kmh):
    assert road_speed_kmh(maxspeed, highway) == pytest.approx(kmh, abs=0.01)


def test_loading_roads_needs_postgresql(db):
    if connection.vendor == "postgresql":
        pytest.skip("the refusal is for other databases")
    with pytest.raises(RoadsUnavailable, match="PostgreSQL"):
        load_road_graph(RoadGraph(nodes=[], edges=[]))


def test_a_missing_extract_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError):
        call_command("load_roads", str(tmp_path / "missing.osm.pbf"))


@pytest.fixture
def helsinki(settings, db):
    """The Helsinki graph loaded into the test database; routing by road."""
    load_road_graph(helsinki_graph())
    settings.ROUTING = "pgrouting"
    return list(RoadNode.objects.values_list("lat", "lon"))


@pytest.mark.pgrouting
class TestRoad:
    def test_load_roads_builds_the_graph_from_the_extract(self, db, capsys):
        call_command("load_roads", str(helsinki_pbf()))

        assert RoadNode.objects.count() == 1437
        assert RoadEdge.objects.count() == 1500
        assert RoadEdge.objects.filter(reverse_cost=-1).exists()  # one-way streets
        assert "1437 nodes and 1500 road segments" in capsys.readouterr().out
        call_command("load_roads", str(helsinki_pbf()))  # again: replaced, not doubled
        assert RoadEdge.objects.count() == 1500

    def test_road_times_come_from_the_graph(self, helsinki):
        [road] = travel_seconds([KAMPPI], SENATE_SQUARE, emergency=True)
        [routine] = travel_seconds([KAMPPI], SENATE_SQUARE, emergency=False)

        assert (road.source, road.note) == ("road", "")
        straight = haversine_km(*KAMPPI, *SENATE_SQUARE)
        assert road.distance_km == pytest.approx(straight)
        # Along streets at 30-60 km/h: slower than the crow flies at the fastest limit.
        assert road.seconds > straight / 60 * 3600
        assert road.seconds < straight * 3 / 20 * 3600
        assert routine.seconds == pytest.approx(road.seconds * 60 / 45)

    def test_one_way_streets_make_times_differ_by_direction(self, helsinki):
        rng = random.Random(7)
        pairs = [(rng.choice(helsinki), rng.choice(helsinki)) for _ in range(40)]
        there = [travel_seconds([a], b, emergency=True)[0] for a, b in pairs]
        back = [travel_seconds([b], a, emergency=True)[0] for a, b in pairs]
        assert any(
            x.source == y.source == "road" and abs(x.seconds - y.seconds) > 5
            for x, y in zip(there, back, strict=True)
        )

    def test_one_search_answers_every_candidate(self, helsinki, django_assert_num_queries):
        rng = random.Random(3)
        origins = [rng.choice(helsinki) for _ in range(200)]
        # SAVEPOINT, snap every point, one pgr_dijkstraCost, RELEASE: 200 or 2 alike.
        with django_assert_num_queries(4):
            many = travel_seconds(origins, SENATE_SQUARE, emergency=True)
        with django_assert_num_queries(4):
            travel_seconds(origins[:2], SENATE_SQUARE, emergency=True)
        assert len(many) == 200
        assert sum(t.source == "road" for t in many) > 150

    def test_a_crew_off_the_graph_gets_the_estimate_with_the_reason(self, helsinki):
        on_graph, far_away = travel_seconds([KAMPPI, BERLIN], SENATE_SQUARE, emergency=True)

        assert on_graph.source == "road"
        assert far_away.source == "estimate"
        assert far_away.note == "off the road graph: straight-line estimate"
        assert far_away.seconds == pytest.approx(
            haversine_km(*BERLIN, *SENATE_SQUARE) * 1.35 / 60 * 3600
        )

    def test_a_crew_with_no_road_to_the_incident_gets_the_estimate(self, helsinki):
        # The clipped extract's west edge: roads lead from the centre there, not back.
        [stuck] = travel_seconds([WEST_EDGE], SENATE_SQUARE, emergency=True)
        [back] = travel_seconds([SENATE_SQUARE], WEST_EDGE, emergency=True)

        assert (stuck.source, stuck.note) == (
            "estimate",
            "no road route to the incident: straight-line estimate",
        )
        assert back.source == "road"

    def test_an_incident_off_the_graph_gets_estimates_for_all(self, helsinki):
        travels = travel_seconds([KAMPPI, SENATE_SQUARE], BERLIN, emergency=True)

        assert {t.source for t in travels} == {"estimate"}
        assert {t.note for t in travels} == {
            "the incident is off the road graph: straight-line estimate"
        }

    def test_a_crew_at_the_incidents_node_is_there(self, helsinki):
        [here] = travel_seconds([SENATE_SQUARE], SENATE_SQUARE, emergency=True)
        assert here.source == "road"
        assert here.seconds < 30  # only the short legs to and from the node

    def test_without_pgrouting_it_estimates_and_the_transaction_goes_on(self, helsinki):
        with connection.cursor() as cursor:
            cursor.execute("DROP EXTENSION pgrouting")

        [travel] = travel_seconds([KAMPPI], SENATE_SQUARE, emergency=True)

        assert (travel.source, travel.note) == (
            "estimate",
            "road routing unavailable: straight-line estimate",
        )
        assert RoadNode.objects.count() == 1437  # the caller's transaction still works

    def test_without_a_graph_everything_is_estimated(self, settings, db):
        settings.ROUTING = "pgrouting"
        [travel] = travel_seconds([KAMPPI], SENATE_SQUARE, emergency=True)
        assert (travel.source, travel.note) == (
            "estimate",
            "the incident is off the road graph: straight-line estimate",
        )
