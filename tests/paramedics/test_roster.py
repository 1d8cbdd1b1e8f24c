"""Rosters (design §14): stations, shifts, the overlap rule, the shift-end job, the
shift rule for `available`, and a paramedic's own shifts."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from integrations.models import Destination, OutboxEvent
from paramedics.models import Paramedic, ParamedicStatus, Shift, ShiftAssignment, Station
from paramedics.services import (
    ROSTER_ACTOR_USERNAME,
    ShiftOverlap,
    roster_release_ended_shifts,
    shift_create,
    shift_update,
)
from tasks.models import TaskStatus
from tasks.services import task_change_status
from tests.factories import ParamedicFactory, StationFactory, put_on_task, shift_for
from tests.helpers import API, assert_json_error

H = timedelta(hours=1)


def hour(offset: float = 0):
    """The start of the current hour, `offset` hours away (shifts on round hours)."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    return now + offset * H


# --- Stations ----------------------------------------------------------------------


class TestStations:
    def test_it_creates_a_station(self, supervisor_client):
        response = supervisor_client.post(
            f"{API}/stations",
            {"code": "MITTE", "name": "Mitte", "location": {"lat": 52.52, "lon": 13.4}},
        )
        assert response.status_code == 201, response.content
        data = response.json()
        assert (data["code"], data["min_staff"], data["location"]) == (
            "MITTE",
            1,
            {"lat": 52.52, "lon": 13.4},
        )
        assert Station.objects.get(pk=data["id"]).name == "Mitte"

    def test_it_refuses_a_code_taken_in_another_case(self, supervisor_client):
        StationFactory(code="MITTE")
        response = supervisor_client.post(f"{API}/stations", {"code": "mitte", "name": "x"})
        body = assert_json_error(response, 409, "duplicate")
        assert body["errors"]["code"][0]["code"] == "duplicate_code"
        assert Station.objects.count() == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"code": " MITTE", "name": "x"},
            {"code": "", "name": "x"},
            {"code": "A", "name": "x", "min_staff": -1},
            {"code": "A", "name": "x", "min_staff": "2"},
            {"code": "A", "name": "x", "min_staff": True},
            {"code": "A", "name": "x", "location": {"lat": 91, "lon": 0}},
            {"code": "A", "name": "x", "location": {"lat": 1}},
            {"code": "A\x00", "name": "x"},
        ],
    )
    def test_it_refuses_invalid_input(self, supervisor_client, body):
        response = supervisor_client.post(f"{API}/stations", body)
        assert_json_error(response, 400, "invalid")
        assert not Station.objects.exists()

    def test_a_new_code_is_carried_to_its_paramedics(self, supervisor_client):
        station = StationFactory(code="OLD")
        medic = ParamedicFactory(base_station=station)
        response = supervisor_client.patch(f"{API}/stations/{station.id}", {"code": "NEW"})
        assert response.status_code == 200, response.content
        medic.refresh_from_db()
        assert medic.base_station_id == "NEW"
        got = supervisor_client.get(f"{API}/paramedics/{medic.id}").json()
        assert got["base_station"] == "NEW"
        assert not Station.objects.filter(code="OLD").exists()

    def test_list_query_count_is_constant(self, supervisor_client, django_assert_num_queries):
        StationFactory.create_batch(3)
        # The JWT user (with its paramedic), its groups, the page (not full: it is its
        # own count, no COUNT(*)).
        with django_assert_num_queries(3):
            assert supervisor_client.get(f"{API}/stations").status_code == 200
        StationFactory.create_batch(20)
        with django_assert_num_queries(3):
            assert len(supervisor_client.get(f"{API}/stations").json()["results"]) == 23


# --- A paramedic's station is a station's code ---------------------------------------


class TestBaseStation:
    def test_it_takes_a_code_in_any_case_and_answers_the_stored_one(
        self, supervisor_client, paramedic
    ):
        StationFactory(code="Kreuzberg")
        response = supervisor_client.patch(
            f"{API}/paramedics/{paramedic.id}", {"base_station": "KREUZBERG"}
        )
        assert response.status_code == 200, response.content
        assert response.json()["base_station"] == "Kreuzberg"
        paramedic.refresh_from_db()
        assert paramedic.base_station.code == "Kreuzberg"

    def test_an_unknown_code_is_invalid_and_changes_nothing(self, supervisor_client, paramedic):
        response = supervisor_client.patch(
            f"{API}/paramedics/{paramedic.id}", {"base_station": "Atlantis", "phone": "+4930999"}
        )
        body = assert_json_error(response, 400, "unknown_station")
        assert body["errors"]["base_station"][0]["code"] == "unknown_station"
        paramedic.refresh_from_db()
        assert (paramedic.base_station_id, paramedic.phone) == ("North", "+4930123456")

    def test_blank_means_no_station(self, supervisor_client, paramedic):
        response = supervisor_client.patch(f"{API}/paramedics/{paramedic.id}", {"base_station": ""})
        assert response.json()["base_station"] == ""
        paramedic.refresh_from_db()
        assert paramedic.base_station_id is None


# --- Shifts: API and the overlap rule ---------------------------------------------------


def shift_body(station, *paramedics, start=1, length=8, **extra):
    return {
        "station": str(station.id),
        "starts_at": hour(start).isoformat(),
        "ends_at": hour(start + length).isoformat(),
        "paramedics": [str(p.id) for p in paramedics],
        **extra,
    }


class TestShifts:
    def test_it_plans_a_shift(self, supervisor_client, paramedic, other_paramedic):
        station = StationFactory(code="MITTE")
        response = supervisor_client.post(
            f"{API}/shifts", shift_body(station, paramedic, other_paramedic, notes="day")
        )
        assert response.status_code == 201, response.content
        data = response.json()
        assert data["station"] == str(station.id)
        assert data["station_code"] == "MITTE"
        assert data["paramedics"] == [str(paramedic.id), str(other_paramedic.id)]
        shift = Shift.objects.get(pk=data["id"])
        assert shift.notes == "day"
        assert set(shift.assignments.values_list("starts_at", "ends_at")) == {(hour(1), hour(9))}

    def test_an_overlap_is_a_409_naming_the_clashing_shift(self, supervisor_client, paramedic):
        station = StationFactory()
        first = shift_for(paramedic, station=station, starts_at=hour(1), ends_at=hour(9))
        response = supervisor_client.post(f"{API}/shifts", shift_body(station, paramedic, start=8))
        body = assert_json_error(response, 409, "shift_overlap")
        assert str(first.id) in body["detail"]
        assert body["errors"]["paramedics"][0]["shift"] == str(first.id)
        assert body["errors"]["paramedics"][0]["paramedic"] == str(paramedic.id)
        assert Shift.objects.count() == 1

    def test_back_to_back_shifts_do_not_overlap(self, paramedic):
        shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        shift_for(paramedic, starts_at=hour(9), ends_at=hour(17))
        assert ShiftAssignment.objects.filter(paramedic=paramedic).count() == 2

    def test_the_overlap_rule_holds_when_a_shift_moves(self, paramedic):
        shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        later = shift_for(paramedic, starts_at=hour(10), ends_at=hour(18))
        with pytest.raises(ShiftOverlap):
            shift_update(shift=later, changes={"starts_at": hour(8)})
        later.refresh_from_db()
        assert later.starts_at == hour(10)

    def test_the_database_refuses_an_overlap_the_service_did_not_see(self, paramedic, db):
        """PostgreSQL: the exclusion constraint; SQLite: the service is the rule."""
        from django.db import IntegrityError, connection, transaction

        shift = shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        other = Shift.objects.create(station=shift.station, starts_at=hour(2), ends_at=hour(3))
        row = ShiftAssignment(shift=other, paramedic=paramedic, starts_at=hour(2), ends_at=hour(3))
        if connection.vendor != "postgresql":
            pytest.skip("the exclusion constraint exists on PostgreSQL only")
        with pytest.raises(IntegrityError), transaction.atomic():
            row.save()

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"length": 0}, "ends_before_start"),
            ({"length": -2}, "ends_before_start"),
            ({"length": 25}, "shift_too_long"),
        ],
    )
    def test_it_refuses_a_bad_period(self, supervisor_client, paramedic, change, code):
        body = assert_json_error(
            supervisor_client.post(
                f"{API}/shifts", shift_body(StationFactory(), paramedic, **change)
            ),
            400,
            "invalid",
        )
        assert body["errors"]["ends_at"][0]["code"] == code
        assert not Shift.objects.exists()

    def test_it_refuses_unknown_stations_and_paramedics(self, supervisor_client, paramedic):
        station = StationFactory()
        body = shift_body(station, paramedic)
        response = supervisor_client.post(
            f"{API}/shifts", {**body, "station": "00000000-0000-0000-0000-000000000000"}
        )
        assert_json_error(response, 400, "unknown_station")
        response = supervisor_client.post(
            f"{API}/shifts",
            {**body, "paramedics": [str(paramedic.id), "00000000-0000-0000-0000-000000000001"]},
        )
        assert_json_error(response, 400, "invalid")
        assert not Shift.objects.exists() and not ShiftAssignment.objects.exists()

    @pytest.mark.parametrize(
        "patch",
        [
            {"starts_at": "9999-12-31T23:00:00-12:00"},
            {"starts_at": "yesterday"},
            {"paramedics": "not-a-list"},
            {"paramedics": [5]},
            {"notes": 7},
        ],
    )
    def test_it_refuses_malformed_input(self, supervisor_client, paramedic, patch):
        body = {**shift_body(StationFactory(), paramedic), **patch}
        assert_json_error(supervisor_client.post(f"{API}/shifts", body), 400, "invalid")
        assert not Shift.objects.exists()

    def test_an_update_replaces_the_paramedics(self, supervisor_client, paramedic, other_paramedic):
        shift = shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        response = supervisor_client.patch(
            f"{API}/shifts/{shift.id}",
            {"paramedics": [str(other_paramedic.id)], "ends_at": hour(10).isoformat()},
        )
        assert response.status_code == 200, response.content
        assert response.json()["paramedics"] == [str(other_paramedic.id)]
        assignment = ShiftAssignment.objects.get(shift=shift)
        assert (assignment.paramedic_id, assignment.ends_at) == (other_paramedic.id, hour(10))

    def test_delete_removes_the_shift(self, supervisor_client, paramedic):
        shift = shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        assert supervisor_client.delete(f"{API}/shifts/{shift.id}").status_code == 204
        assert not Shift.objects.exists() and not ShiftAssignment.objects.exists()
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.AVAILABLE

    def test_it_filters(self, supervisor_client, paramedic, other_paramedic):
        north, south = StationFactory(code="N"), StationFactory(code="S")
        early = shift_for(paramedic, station=north, starts_at=hour(-10), ends_at=hour(-2))
        now = shift_for(other_paramedic, station=south, starts_at=hour(-1), ends_at=hour(7))
        late = shift_for(paramedic, station=north, starts_at=hour(8), ends_at=hour(16))

        def ids(query):
            response = supervisor_client.get(f"{API}/shifts?{query}")
            assert response.status_code == 200, response.content
            return [row["id"] for row in response.json()["results"]]

        assert ids(f"station={north.id}") == [str(early.id), str(late.id)]
        assert ids(f"paramedic={paramedic.id}") == [str(early.id), str(late.id)]
        window = f"ends_after={hour(0).isoformat()}&starts_before={hour(1).isoformat()}"
        assert ids(window.replace("+", "%2B")) == [str(now.id)]
        assert_json_error(supervisor_client.get(f"{API}/shifts?station=x"), 400, "invalid")
        assert_json_error(supervisor_client.get(f"{API}/shifts?starts_before="), 400, "invalid")

    def test_list_query_count_is_constant(self, supervisor_client, django_assert_num_queries, db):
        station = StationFactory()

        def plan(first, count):
            for i in range(first, first + count):
                people = ParamedicFactory.create_batch(2)
                shift_for(*people, station=station, starts_at=hour(i), ends_at=hour(i + 1))

        plan(0, 2)
        # The JWT user (with its paramedic), its groups, the page with its stations
        # joined (not full: no COUNT(*)), the page's assignments.
        with django_assert_num_queries(4):
            assert supervisor_client.get(f"{API}/shifts").status_code == 200
        plan(2, 10)
        with django_assert_num_queries(4):
            response = supervisor_client.get(f"{API}/shifts")
        assert len(response.json()["results"]) == 12
        assert all(len(row["paramedics"]) == 2 for row in response.json()["results"])


class TestOwnShifts:
    def test_it_lists_current_and_upcoming_shifts(self, paramedic_client, paramedic):
        shift_for(paramedic, starts_at=hour(-20), ends_at=hour(-12))
        current = shift_for(paramedic, starts_at=hour(-1), ends_at=hour(7))
        upcoming = shift_for(paramedic, starts_at=hour(20), ends_at=hour(28))
        shift_for(ParamedicFactory(), starts_at=hour(1), ends_at=hour(2))
        response = paramedic_client.get(f"{API}/paramedics/{paramedic.id}/shifts")
        assert response.status_code == 200, response.content
        assert [r["id"] for r in response.json()["results"]] == [
            str(current.id),
            str(upcoming.id),
        ]

    def test_query_count_is_constant(self, paramedic_client, paramedic, django_assert_num_queries):
        shift_for(paramedic, starts_at=hour(1), ends_at=hour(2))
        # The JWT user with its paramedic, its groups, the page with stations joined
        # (not full: no COUNT(*)), the page's assignments.
        with django_assert_num_queries(4):
            paramedic_client.get(f"{API}/paramedics/{paramedic.id}/shifts")
        for i in range(2, 12):
            shift_for(paramedic, starts_at=hour(i), ends_at=hour(i + 1))
        with django_assert_num_queries(4):
            response = paramedic_client.get(f"{API}/paramedics/{paramedic.id}/shifts")
        assert response.json()["count"] == 11

    def test_unknown_query_parameters_are_refused(self, paramedic_client, paramedic):
        response = paramedic_client.get(f"{API}/paramedics/{paramedic.id}/shifts?station=x")
        assert_json_error(response, 400, "invalid")


# --- The end of a shift ----------------------------------------------------------------


def shift_ended_events(paramedic):
    return OutboxEvent.objects.filter(kind="paramedic.shift_ended", aggregate_id=paramedic.pk)


class TestShiftEnd:
    def test_available_paramedics_go_off_duty_with_history_and_event(self, paramedic):
        shift = shift_for(paramedic, starts_at=hour(-8), ends_at=hour(1))

        assert roster_release_ended_shifts(now=hour(0)) == 0  # still running
        assert roster_release_ended_shifts(now=hour(1)) == 1

        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.OFF_DUTY
        entry = LogEntry.objects.get(object_id=str(paramedic.pk))
        assert entry.user.username == ROSTER_ACTOR_USERNAME
        assert not entry.user.is_active and not entry.user.has_usable_password()
        assert str(shift.id) in entry.get_change_message()
        event = shift_ended_events(paramedic).get()
        assert event.destination == Destination.NOTIFICATION
        assert event.payload["status"] == "off_duty"
        assert event.payload["shift_id"] == str(shift.id)
        assert event.payload["station"] == "North"
        # Once only.
        assert roster_release_ended_shifts(now=hour(2)) == 0
        assert shift_ended_events(paramedic).count() == 1

    def test_an_on_task_paramedic_finishes_its_task_first(self, paramedic):
        shift_for(paramedic, starts_at=hour(-7), ends_at=hour(1))
        task = put_on_task(paramedic)

        assert roster_release_ended_shifts(now=hour(1)) == 0
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.ON_TASK
        assert not shift_ended_events(paramedic).exists()

        actor = task.created_by
        task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=actor)
        task_change_status(task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=actor)
        assert roster_release_ended_shifts(now=hour(1.5)) == 1
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.OFF_DUTY

    def test_one_on_its_next_shift_stays_available(self, paramedic):
        first = shift_for(paramedic, starts_at=hour(-7), ends_at=hour(1))
        shift_for(paramedic, starts_at=hour(1), ends_at=hour(9))
        assert roster_release_ended_shifts(now=hour(1.5)) == 0
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.AVAILABLE
        # The first is handled: if a supervisor now marks it available again, the job
        # does not undo that.
        assert ShiftAssignment.objects.get(shift=first).released_at == hour(1.5)
        assert ShiftAssignment.objects.filter(released_at__isnull=True).count() == 1

    def test_off_duty_paramedics_and_past_imports_are_left_alone(self, paramedic, other_paramedic):
        paramedic.status = ParamedicStatus.OFF_DUTY
        paramedic.save()
        shift_for(paramedic, starts_at=hour(-8), ends_at=hour(-1))
        # A shift entered after it ended (last week's import) has nothing left to do.
        shift_for(other_paramedic, starts_at=hour(-30), ends_at=hour(-22))
        assert roster_release_ended_shifts() == 0
        other_paramedic.refresh_from_db()
        assert other_paramedic.status == ParamedicStatus.AVAILABLE
        assert not OutboxEvent.objects.filter(kind="paramedic.shift_ended").exists()

    def test_the_beat_job_runs_it(self, paramedic):
        from paramedics.jobs import release_ended_shifts

        shift = shift_for(paramedic, starts_at=hour(-7), ends_at=hour(1))
        # Time passes: the shift ended a minute ago.
        ended = timezone.now() - timedelta(minutes=1)
        Shift.objects.filter(pk=shift.pk).update(ends_at=ended)
        ShiftAssignment.objects.filter(shift=shift).update(ends_at=ended)
        assert release_ended_shifts.apply().get() == 1
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.OFF_DUTY


# --- ROSTER_REQUIRES_SHIFT ----------------------------------------------------------------


class TestRequiresShift:
    @pytest.fixture(autouse=True)
    def _on(self, settings):
        settings.ROSTER_REQUIRES_SHIFT = True

    def test_available_outside_a_shift_is_409(self, paramedic_client, paramedic):
        Paramedic.objects.filter(pk=paramedic.pk).update(status=ParamedicStatus.OFF_DUTY)
        response = paramedic_client.patch(
            f"{API}/paramedics/{paramedic.id}", {"status": "available"}
        )
        assert_json_error(response, 409, "not_on_shift")
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.OFF_DUTY

    def test_available_on_a_shift_is_fine(self, paramedic_client, paramedic):
        Paramedic.objects.filter(pk=paramedic.pk).update(status=ParamedicStatus.OFF_DUTY)
        shift_for(paramedic, starts_at=hour(0), ends_at=hour(8))
        response = paramedic_client.patch(
            f"{API}/paramedics/{paramedic.id}", {"status": "available"}
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "available"

    def test_a_new_paramedic_cannot_start_available(self, supervisor_client):
        body = {
            "badge_number": "NEW-9",
            "first_name": "N",
            "last_name": "M",
            "email": "n9@ems.example.org",
            "certification_level": "emt",
            "status": "available",
        }
        assert_json_error(supervisor_client.post(f"{API}/paramedics", body), 409, "not_on_shift")
        assert not Paramedic.objects.filter(badge_number="NEW-9").exists()

    def test_off_duty_is_always_allowed(self, paramedic_client, paramedic):
        response = paramedic_client.patch(
            f"{API}/paramedics/{paramedic.id}", {"status": "off_duty"}
        )
        assert response.status_code == 200


def test_shift_create_service_dedupes_paramedics(paramedic):
    shift = shift_create(
        station=StationFactory(),
        starts_at=hour(1),
        ends_at=hour(2),
        paramedics=[paramedic, paramedic.pk],
    )
    assert shift.assignments.count() == 1


def test_the_command_runs_the_job(paramedic, capsys):
    from django.core.management import call_command

    shift = shift_for(paramedic, starts_at=hour(-7), ends_at=hour(1))
    ended = timezone.now() - timedelta(minutes=1)
    Shift.objects.filter(pk=shift.pk).update(ends_at=ended)
    ShiftAssignment.objects.filter(shift=shift).update(ends_at=ended)
    call_command("release_ended_shifts")
    assert "1 paramedic(s) taken off duty" in capsys.readouterr().out
    paramedic.refresh_from_db()
    assert paramedic.status == ParamedicStatus.OFF_DUTY
