"""Load a road graph from an OpenStreetMap extract (design §18): `manage.py load_roads
FILE.osm.pbf`. Replaces the graph the service routes on (ROUTING=pgrouting)."""

import time

from django.core.management.base import BaseCommand, CommandError

from integrations.roads import RoadsUnavailable, load_road_graph, read_roads


class Command(BaseCommand):
    help = "Load the drivable roads of an OpenStreetMap .osm.pbf extract for pgRouting."

    def add_arguments(self, parser):
        parser.add_argument("file", help="an .osm.pbf extract, e.g. from Geofabrik")

    def handle(self, *args, file, **options):
        started = time.perf_counter()
        try:
            graph = read_roads(file)
            read = time.perf_counter() - started
            written = load_road_graph(graph)
        except (RoadsUnavailable, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Loaded {len(graph.nodes)} nodes and {len(graph.edges)} road segments from "
            f"{file} (read {read:.1f} s, written {written:.1f} s)."
        )
