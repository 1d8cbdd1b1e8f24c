"""Travel time from crews to an incident (design §18), behind one interface.

`travel_seconds(origins, destination, emergency=...)` answers, for each origin, how
long a crew there needs to reach the destination, and where the figure comes from:

- `estimate` (the default, no extra parts): great-circle distance x
  ROUTING_DETOUR_FACTOR at ROUTING_EMERGENCY_SPEED_KMH (lights and siren) or
  ROUTING_SPEED_KMH;
- `road` (ROUTING=pgrouting): pgRouting's Dijkstra over the road graph that
  `manage.py load_roads` loaded (integrations.models.RoadNode/RoadEdge). Every point
  is snapped to its nearest node in one query, then one `pgr_dijkstraCost` search
  from all origins to the incident answers them all: two queries however many
  candidates, never one per candidate. An origin off the graph (no node within
  ROUTING_SNAP_MAX_METERS) or with no road to the incident gets the estimate, with the
  reason; so does every origin when the incident is off the graph or pgRouting is
  not there.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
METERS_PER_DEGREE = 111_320.0
# Edges loaded around the points a search connects: their bounding box widened by
# this share of its size, and at least ROAD_MARGIN_MIN_KM, so detours fit.
ROAD_MARGIN_SHARE = 0.5
ROAD_MARGIN_MIN_KM = 2.0

ESTIMATE = "estimate"
ROAD = "road"

Point = tuple[float, float]  # (lat, lon)


@dataclass(frozen=True)
class Travel:
    seconds: float
    distance_km: float  # great-circle, whatever the source
    source: str  # ESTIMATE or ROAD
    note: str = ""  # why a road time is not used, when it was asked for


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def speed_kmh(*, emergency: bool) -> float:
    return settings.ROUTING_EMERGENCY_SPEED_KMH if emergency else settings.ROUTING_SPEED_KMH


def estimate_seconds(distance_km: float, *, emergency: bool) -> float:
    """Driving time over a straight-line distance: detour factor at the average speed."""
    return distance_km * settings.ROUTING_DETOUR_FACTOR / speed_kmh(emergency=emergency) * 3600


def travel_seconds(
    origins: Sequence[Point], destination: Point, *, emergency: bool
) -> list[Travel]:
    """For each origin, in order, its travel to `destination` (see the module)."""
    if settings.ROUTING == "pgrouting" and origins:
        return _road_travel(origins, destination, emergency=emergency)
    return [_estimate(origin, destination, emergency=emergency) for origin in origins]


def _estimate(origin: Point, destination: Point, *, emergency: bool, note: str = "") -> Travel:
    distance = haversine_km(*origin, *destination)
    return Travel(
        seconds=estimate_seconds(distance, emergency=emergency),
        distance_km=distance,
        source=ESTIMATE,
        note=note,
    )


# One nearest node per point, searched in a box of ROUTING_SNAP_MAX_METERS around it
# (the lat/lon index) and measured on a local flat projection (exact enough at that
# range). A point with no node in its box gets NULLs.
SNAP_SQL = """
SELECT p.i, n.id, n.meters
FROM unnest(%(lats)s::float8[], %(lons)s::float8[]) WITH ORDINALITY AS p(lat, lon, i)
LEFT JOIN LATERAL (
    SELECT id, %(mpd)s * sqrt(power(lat - p.lat, 2)
                              + power((lon - p.lon) * cos(radians(p.lat)), 2)) AS meters
    FROM integrations_roadnode
    WHERE lat BETWEEN p.lat - %(dlat)s AND p.lat + %(dlat)s
      AND lon BETWEEN p.lon - %(dlat)s / cos(radians(p.lat))
                  AND p.lon + %(dlat)s / cos(radians(p.lat))
    ORDER BY meters
    LIMIT 1
) n ON true
ORDER BY p.i
"""

# The edges pgRouting searches, as SQL text: those in a box (floats formatted in).
EDGES_SQL = (
    "SELECT id, source, target, cost, reverse_cost FROM integrations_roadedge "
    "WHERE lat BETWEEN {:.7f} AND {:.7f} AND lon BETWEEN {:.7f} AND {:.7f}"
)
ROUTE_SQL = "SELECT start_vid, agg_cost FROM pgr_dijkstraCost(%s, %s::bigint[], %s::bigint, true)"


def _road_travel(origins: Sequence[Point], destination: Point, *, emergency: bool) -> list[Travel]:
    points = [destination, *origins]
    try:
        # A savepoint: a failed search (no pgRouting) must not spoil the caller's
        # transaction (assigning runs inside one).
        with transaction.atomic(), connection.cursor() as cursor:
            snapped = _snap(cursor, points)
            target = snapped[0]
            if target is None:
                note = "the incident is off the road graph: straight-line estimate"
                return [_estimate(o, destination, emergency=emergency, note=note) for o in origins]
            starts = sorted({node for node, _ in filter(None, snapped[1:])} - {target[0]})
            costs = _route(cursor, starts, target[0], points) if starts else {}
    except DatabaseError as exc:
        logger.warning("road routing failed, using estimates: %s", exc)
        note = "road routing unavailable: straight-line estimate"
        return [_estimate(o, destination, emergency=emergency, note=note) for o in origins]
    # Road times are at the roads' speeds (lights and siren); without them, slower in
    # the same proportion as the estimate's speeds.
    slowdown = settings.ROUTING_EMERGENCY_SPEED_KMH / speed_kmh(emergency=emergency)
    results = []
    for origin, snap in zip(origins, snapped[1:], strict=True):
        if snap is None:
            note = "off the road graph: straight-line estimate"
            results.append(_estimate(origin, destination, emergency=emergency, note=note))
            continue
        node, meters = snap
        cost = 0.0 if node == target[0] else costs.get(node)
        if cost is None:
            note = "no road route to the incident: straight-line estimate"
            results.append(_estimate(origin, destination, emergency=emergency, note=note))
            continue
        # Reaching the graph and leaving it: short legs, estimated.
        legs_km = (meters + target[1]) / 1000
        results.append(
            Travel(
                seconds=cost * slowdown + estimate_seconds(legs_km, emergency=emergency),
                distance_km=haversine_km(*origin, *destination),
                source=ROAD,
            )
        )
    return results


def _snap(cursor, points: list[Point]) -> list[tuple[int, float] | None]:
    cursor.execute(
        SNAP_SQL,
        {
            "lats": [lat for lat, _ in points],
            "lons": [lon for _, lon in points],
            "mpd": METERS_PER_DEGREE,
            "dlat": settings.ROUTING_SNAP_MAX_METERS / METERS_PER_DEGREE,
        },
    )
    limit = settings.ROUTING_SNAP_MAX_METERS
    return [
        (node, meters) if node is not None and meters <= limit else None
        for _, node, meters in cursor.fetchall()
    ]


def _route(cursor, starts: list[int], target: int, points: list[Point]) -> dict[int, float]:
    """Seconds from each start node to `target`: one search over the edges around the
    points (their box, widened so a detour fits)."""
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    span_km = max(max(lats) - min(lats), max(lons) - min(lons)) * METERS_PER_DEGREE / 1000
    margin_km = max(ROAD_MARGIN_MIN_KM, span_km * ROAD_MARGIN_SHARE)
    dlat = margin_km * 1000 / METERS_PER_DEGREE
    dlon = dlat / max(0.01, math.cos(math.radians(max(abs(min(lats)), abs(max(lats))))))
    # Only floats this function computed are formatted in: pgRouting takes the edges
    # as SQL text, and nothing from a client reaches it.
    edges_sql = EDGES_SQL.format(
        min(lats) - dlat, max(lats) + dlat, min(lons) - dlon, max(lons) + dlon
    )
    cursor.execute(ROUTE_SQL, [edges_sql, starts, target])
    return {int(start): float(cost) for start, cost in cursor.fetchall()}
