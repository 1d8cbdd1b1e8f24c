"""The roster in the admin (design §14): stations, shifts, the week view of coverage,
and shifts imported and exported as CSV/XLSX with per-row errors."""

import io
from datetime import UTC, datetime, timedelta

import pytest
import tablib
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from paramedics.models import Shift, ShiftAssignment, Station
from tests.factories import ParamedicFactory, StationFactory, shift_for

DAY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
WEEK = reverse("admin:paramedics_shift_week")
IMPORT = reverse("admin:paramedics_shift_import")
PROCESS_IMPORT = reverse("admin:paramedics_shift_process_import")
HEADER = "id,station,starts_at,ends_at,paramedics,notes\n"


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


# --- The week view ------------------------------------------------------------------------


class TestWeekView:
    def test_it_shows_coverage_and_gaps_with_add_links(self, console_client, db):
        mitte = StationFactory(code="MITTE", min_staff=2)
        a, b = ParamedicFactory(badge_number="A-1"), ParamedicFactory(badge_number="A-2")
        shift_for(a, b, station=mitte, starts_at=at(6), ends_at=at(18))
        shift_for(a, station=mitte, starts_at=at(18), ends_at=at(30))  # one of two at night

        response = console_client.get(WEEK, {"start": "2026-12-07"})

        assert response.status_code == 200
        cells = {station.code: row for station, row in response.context["rows"]}["MITTE"]
        monday, tuesday = cells[0], cells[1]
        assert (monday.staffed_hours, monday.needed_hours) == (24 + 6, 48)
        assert [(g.starts_at.hour, g.ends_at, g.staffed) for g in monday.gaps] == [
            (0, at(6), 0),
            (18, at(24), 1),
        ]
        assert [(g.starts_at, g.ends_at, g.staffed) for g in tuesday.gaps] == [
            (at(24), at(30), 1),
            (at(30), at(48), 0),
        ]
        assert all(len(cell.gaps) == 1 for cell in cells[2:])
        html = response.content.decode()
        assert 'data-day="2026-12-07" data-gaps="2"' in html
        assert "30 / 48 h" in html
        add = reverse("admin:paramedics_shift_add")
        assert f"{add}?station={mitte.pk}&amp;starts_at=2026-12-07T18%3A00%3A00%2B00%3A00" in html

    def test_a_station_with_min_staff_met_has_no_gaps(self, console_client, db):
        station = StationFactory(code="ONE", min_staff=1)
        medics = ParamedicFactory.create_batch(3)
        for i, medic in enumerate(medics):
            shift_for(medic, station=station, starts_at=at(8 * i), ends_at=at(8 + 8 * i))
        response = console_client.get(WEEK, {"start": "2026-12-07"})
        cells = {station.code: row for station, row in response.context["rows"]}["ONE"]
        assert cells[0].gaps == [] and cells[0].staffed_hours == 24
        assert '<tr data-station="ONE">' in response.content.decode()

    def test_a_bad_start_shows_this_week(self, console_client, db):
        for value in ("not-a-date", "0001-01-01", "9999-12-31"):
            response = console_client.get(WEEK, {"start": value})
            assert response.status_code == 200
            assert len(response.context["days"]) == 7

    def test_query_count_does_not_grow_with_stations_or_shifts(
        self, console_client, django_assert_num_queries, db
    ):
        def plan(count):
            for _ in range(count):
                station = StationFactory()
                shift_for(ParamedicFactory(), station=station, starts_at=at(1), ends_at=at(9))

        plan(1)
        with django_assert_num_queries(WEEK_QUERIES):
            console_client.get(WEEK, {"start": "2026-12-07"})
        plan(5)
        with django_assert_num_queries(WEEK_QUERIES):
            console_client.get(WEEK, {"start": "2026-12-07"})

    def test_the_add_form_takes_the_gap_from_the_link(self, console_client, db):
        station = StationFactory()
        response = console_client.get(
            reverse("admin:paramedics_shift_add"),
            {"station": station.pk, "starts_at": at(18).isoformat(), "ends_at": "garbage"},
        )
        assert response.status_code == 200
        initial = response.context["adminform"].form.initial
        assert initial["starts_at"] == at(18) and "ends_at" not in initial


# The week view: session, user, its groups (supervisor check), the user's and its
# groups' permissions (the admin's sidebar), the stations, the week's assignments.
WEEK_QUERIES = 7


# --- Shifts in the admin form --------------------------------------------------------------


class TestShiftForm:
    def form(self, station, people, start, end):
        return {
            "station": str(station.pk),
            "starts_at_0": start.date().isoformat(),
            "starts_at_1": start.strftime("%H:%M:%S"),
            "ends_at_0": end.date().isoformat(),
            "ends_at_1": end.strftime("%H:%M:%S"),
            "people": [str(p.pk) for p in people],
            "notes": "from the form",
        }

    def test_it_adds_a_shift_through_the_service(self, console_client, db):
        station, medic = StationFactory(), ParamedicFactory()
        response = console_client.post(
            reverse("admin:paramedics_shift_add"), self.form(station, [medic], at(6), at(18))
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        assignment = ShiftAssignment.objects.get()
        assert (assignment.paramedic, assignment.starts_at, assignment.ends_at) == (
            medic,
            at(6),
            at(18),
        )
        assert LogEntry.objects.filter(object_id=str(assignment.shift_id)).exists()

    def test_an_overlap_is_a_form_error(self, console_client, db):
        station, medic = StationFactory(), ParamedicFactory(badge_number="OVL-1")
        shift_for(medic, station=station, starts_at=at(6), ends_at=at(18))
        response = console_client.post(
            reverse("admin:paramedics_shift_add"), self.form(station, [medic], at(17), at(20))
        )
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "OVL-1 is already on shift" in errors["people"][0]
        assert Shift.objects.count() == 1

    def test_a_bad_period_is_a_form_error(self, console_client, db):
        station = StationFactory()
        response = console_client.post(
            reverse("admin:paramedics_shift_add"), self.form(station, [], at(6), at(31))
        )
        assert response.status_code == 200
        assert "at most 24 hours" in response.context["adminform"].form.errors["ends_at"][0]
        assert not Shift.objects.exists()

    def test_it_deletes_through_the_service(self, console_client, db):
        shift = shift_for(ParamedicFactory(), starts_at=at(6), ends_at=at(18))
        response = console_client.post(
            reverse("admin:paramedics_shift_delete", args=[shift.pk]), {"post": "yes"}
        )
        assert response.status_code == 302
        assert not Shift.objects.exists() and not ShiftAssignment.objects.exists()


# --- Import and export ------------------------------------------------------------------------


@pytest.fixture
def roster(db):
    StationFactory(code="MITTE", min_staff=2)
    StationFactory(code="SPANDAU", min_staff=1)
    return {b: ParamedicFactory(badge_number=b) for b in ("A-1", "A-2", "A-3")}


def upload(client, content: bytes, name: str, fmt: str):
    handle = io.BytesIO(content)
    handle.name = name
    return client.post(IMPORT, {"import_file": handle, "format": fmt, "resource": "0"})


def confirm(client, preview):
    form = preview.context["confirm_form"]
    return client.post(PROCESS_IMPORT, {**form.initial, "resource": "0"})


class TestImport:
    def test_a_valid_csv_is_previewed_then_imported(self, console_client, roster):
        csv = HEADER + (
            ",MITTE,2026-12-07 06:00,2026-12-07 18:00,A-1;A-2,day\n"
            ",mitte,2026-12-07T18:00:00Z,2026-12-08T06:00:00Z,A-1,night\n"  # back to back
            ",SPANDAU,2026-12-07 06:00+01:00,2026-12-07 13:00+01:00,a-3,\n"
        )
        preview = upload(console_client, csv.encode(), "shifts.csv", "0")
        assert preview.status_code == 200
        result = preview.context["result"]
        assert not result.has_errors() and not result.has_validation_errors()
        assert not Shift.objects.exists()  # a preview writes nothing

        done = confirm(console_client, preview)

        assert done.status_code == 302
        shifts = list(Shift.objects.order_by("starts_at", "station__code"))
        assert [(s.station.code, s.starts_at, s.ends_at) for s in shifts] == [
            ("SPANDAU", at(5), at(12)),
            ("MITTE", at(6), at(18)),
            ("MITTE", at(18), at(30)),
        ]
        assert sorted(shifts[1].paramedics.values_list("badge_number", flat=True)) == [
            "A-1",
            "A-2",
        ]
        assert ShiftAssignment.objects.count() == 4
        assert LogEntry.objects.filter(object_id__in=[str(s.pk) for s in shifts]).count() == 3

    def test_a_bad_file_creates_nothing_and_shows_each_rows_error(self, console_client, roster):
        shift_for(roster["A-1"], starts_at=at(6), ends_at=at(18))
        csv = HEADER + (
            ",MITTE,2026-12-08 06:00,2026-12-08 18:00,A-2,fine on its own\n"
            ",MITTE,2026-12-07 10:00,2026-12-07 14:00,A-1,overlaps the shift in the db\n"
            ",MITTE,2026-12-09 06:00,2026-12-09 18:00,NOBODY-9,unknown badge\n"
            ",MITTE,2026-13-45 06:00,2026-12-09 18:00,A-3,bad date\n"
            ",ATLANTIS,2026-12-09 06:00,2026-12-09 18:00,A-3,unknown station\n"
            ",MITTE,2026-12-08 12:00,2026-12-08 20:00,A-2,overlaps row 1 of this file\n"
            ",MITTE,2026-12-10 06:00,2026-12-11 08:00,A-3,too long\n"
        )
        before = (Shift.objects.count(), ShiftAssignment.objects.count())

        preview = upload(console_client, csv.encode(), "shifts.csv", "0")

        assert preview.status_code == 200
        result = preview.context["result"]
        invalid = {row.number: row.error_dict for row in result.invalid_rows}
        assert sorted(invalid) == [2, 3, 4, 5, 6, 7]
        assert "already on shift" in str(invalid[2])
        assert "Unknown badge number(s): NOBODY-9" in str(invalid[3])
        assert "is not a date and time" in str(invalid[4])
        assert "No station has the code 'ATLANTIS'" in str(invalid[5])
        assert "already on shift" in str(invalid[6])
        assert "at most 24 hours" in str(invalid[7])
        html = preview.content.decode()
        assert "Unknown badge number(s): NOBODY-9" in html
        assert 'name="confirm"' not in html  # nothing to confirm
        assert (Shift.objects.count(), ShiftAssignment.objects.count()) == before

    def test_an_xlsx_with_date_cells_is_imported(self, console_client, roster):
        book = tablib.Dataset(
            headers=["id", "station", "starts_at", "ends_at", "paramedics", "notes"]
        )
        book.append(
            ["", "SPANDAU", at(6).replace(tzinfo=None), at(14).replace(tzinfo=None), "A-3", "x"]
        )
        preview = upload(console_client, book.export("xlsx"), "shifts.xlsx", "1")
        assert not preview.context["result"].has_validation_errors(), preview.context[
            "result"
        ].invalid_rows
        confirm(console_client, preview)
        shift = Shift.objects.get()
        assert (shift.station.code, shift.starts_at, shift.ends_at) == ("SPANDAU", at(6), at(14))

    def test_garbage_is_a_form_error_not_a_500(self, console_client, roster):
        response = upload(console_client, b"\x00\xff\xfe garbage", "shifts.xlsx", "1")
        assert response.status_code == 200
        assert not Shift.objects.exists()


class TestExport:
    def test_it_exports_what_imports(self, console_client, roster):
        from paramedics.resources import ShiftResource

        shift_for(
            roster["A-1"],
            roster["A-2"],
            station=Station.objects.get(code="MITTE"),
            starts_at=at(6),
            ends_at=at(18),
            notes="day",
        )
        data = ShiftResource().export()
        assert data.headers == ["id", "station", "starts_at", "ends_at", "paramedics", "notes"]
        row = dict(zip(data.headers, data[0], strict=True))
        assert row["station"] == "MITTE"
        assert row["starts_at"] == "2026-12-07T06:00:00+00:00"
        assert set(row["paramedics"].split(";")) == {"A-1", "A-2"}
        assert console_client.get(reverse("admin:paramedics_shift_export")).status_code == 200
