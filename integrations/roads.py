"""The road graph for road travel times (design §18): read from an OpenStreetMap
extract with pyrosm, written with COPY into the tables integrations.routing searches.

pyrosm (with pandas and geopandas) is needed only here, to load a graph: it is in
requirements/roads.txt, not in the service's runtime requirements.
"""

import re
import time
from dataclasses import dataclass

from django.db import connection, transaction

try:
    import pyrosm
except ImportError:  # only `load_roads` needs it (requirements/roads.txt)
    pyrosm = None

# km/h where a road has no usable `maxspeed`, by OpenStreetMap highway class.
CLASS_SPEED_KMH = {
    "motorway": 100,
    "trunk": 80,
    "primary": 60,
    "secondary": 50,
    "tertiary": 50,
    "unclassified": 40,
    "residential": 30,
    "living_street": 10,
    "service": 20,
}
LINK_SPEED_KMH = 40  # motorway_link, primary_link...
OTHER_SPEED_KMH = 30
MPH = 1.609344
ONE_WAY = {"yes", "true", "1"}
AGAINST_THE_WAY = {"-1", "reverse"}


class RoadsUnavailable(Exception):
    """What loading needs is not there (pyrosm, PostgreSQL, pgRouting)."""


@dataclass
class RoadGraph:
    nodes: list[tuple[int, float, float]]  # (id, lat, lon)
    edges: list[tuple[int, int, float, float]]  # (source, target, cost s, reverse cost s)


def road_speed_kmh(maxspeed, highway) -> float:
    """The road's speed: its posted limit if readable (`50`, `30 mph`), else its class's."""
    if isinstance(maxspeed, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", maxspeed)
        if match and float(match.group(1)) > 0:
            return float(match.group(1)) * (MPH if match.group(2) else 1)
    if not isinstance(highway, str):
        return OTHER_SPEED_KMH
    if highway.endswith("_link"):
        return LINK_SPEED_KMH
    return CLASS_SPEED_KMH.get(highway, OTHER_SPEED_KMH)


def read_roads(path: str) -> RoadGraph:
    """The drivable network of an .osm.pbf extract: nodes, and edges costed in seconds."""
    if pyrosm is None:
        raise RoadsUnavailable("pyrosm is not installed: pip install -r requirements/roads.txt")
    nodes, edges = pyrosm.OSM(path).get_network(network_type="driving", nodes=True)
    graph_edges = []
    for source, target, length, maxspeed, oneway, highway in zip(
        edges["u"],
        edges["v"],
        edges["length"],
        edges["maxspeed"],
        edges["oneway"],
        edges["highway"],
        strict=True,
    ):
        seconds = float(length) / (road_speed_kmh(maxspeed, highway) / 3.6)
        oneway = oneway.strip().lower() if isinstance(oneway, str) else ""
        if oneway in AGAINST_THE_WAY:
            graph_edges.append((int(target), int(source), seconds, -1.0))
        else:
            graph_edges.append(
                (int(source), int(target), seconds, -1.0 if oneway in ONE_WAY else seconds)
            )
    used = {node for edge in graph_edges for node in edge[:2]}
    graph_nodes = [
        (int(node), float(lat), float(lon))
        for node, lat, lon in zip(nodes["id"], nodes["lat"], nodes["lon"], strict=True)
        if int(node) in used
    ]
    return RoadGraph(nodes=graph_nodes, edges=graph_edges)


def load_road_graph(graph: RoadGraph) -> float:
    """Replace the stored graph with `graph` (one transaction); the seconds it took.

    Creates the pgRouting extension if the database lacks it (PostgreSQL with the
    Debian package postgresql-15-pgrouting installed).
    """
    if connection.vendor != "postgresql":
        raise RoadsUnavailable("road routing needs PostgreSQL with pgRouting")
    started = time.perf_counter()
    position = {node: (lat, lon) for node, lat, lon in graph.nodes}
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pgrouting CASCADE")
        except Exception as exc:
            raise RoadsUnavailable(
                f"cannot create the pgrouting extension ({exc}): install the Debian "
                "package postgresql-15-pgrouting"
            ) from exc
        cursor.execute("TRUNCATE integrations_roadnode, integrations_roadedge RESTART IDENTITY")
        with cursor.copy("COPY integrations_roadnode (id, lat, lon) FROM STDIN") as copy:
            for row in graph.nodes:
                copy.write_row(row)
        columns = "source, target, cost, reverse_cost, lat, lon"
        with cursor.copy(f"COPY integrations_roadedge ({columns}) FROM STDIN") as copy:
            for source, target, cost, reverse_cost in graph.edges:
                copy.write_row((source, target, cost, reverse_cost, *position[source]))
        cursor.execute("ANALYZE integrations_roadnode")
        cursor.execute("ANALYZE integrations_roadedge")
    return time.perf_counter() - started
