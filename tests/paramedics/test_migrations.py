"""The migration from free-text base_station to stations loses nothing (design §14)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("paramedics", "0003_paramedic_current_task_and_more")]
AFTER = [("paramedics", "0007_shifts")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_base_station_text_becomes_stations():
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    Paramedic = old.get_model("paramedics", "Paramedic")

    def medic(badge, station):
        user = User.objects.create(username=badge)
        return Paramedic.objects.create(
            user=user,
            badge_number=badge,
            first_name="A",
            last_name="B",
            email=f"{badge}@ems.example.org",
            certification_level="emt",
            base_station=station,
        ).pk

    pks = {
        "m1": medic("m1", "North"),
        "m2": medic("m2", "north"),
        "m3": medic("m3", "North"),
        "m4": medic("m4", "Station 7"),
        "m5": medic("m5", ""),
    }
    try:
        new = migrate(AFTER)
        Station = new.get_model("paramedics", "Station")
        Paramedic = new.get_model("paramedics", "Paramedic")
        assert sorted(Station.objects.values_list("code", "name")) == [
            ("North", "North"),
            ("Station 7", "Station 7"),
        ]
        # "north" and "North" are one station, spelled as most paramedics had it.
        codes = dict(Paramedic.objects.values_list("badge_number", "base_station"))
        assert codes == {"m1": "North", "m2": "North", "m3": "North", "m4": "Station 7", "m5": None}
        assert Paramedic.objects.get(pk=pks["m4"]).base_station.name == "Station 7"

        # And back: the codes stay, "no station" is "" again.
        old = migrate(BEFORE)
        Paramedic = old.get_model("paramedics", "Paramedic")
        assert dict(Paramedic.objects.values_list("badge_number", "base_station")) == {
            **codes,
            "m5": "",
        }
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
