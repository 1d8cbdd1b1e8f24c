"""Location trails (design §20): batches of fixes, the trail a supervisor reads, and
the purge. Who may call which route is tests/security/test_authorization.py's."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.partitions import drop_day_partitions_before
from paramedics.models import LocationFix
from paramedics.services import location_fixes_record, location_trail_maintain
from tests.factories import ParamedicFactory
from tests.helpers import client_for


def fix(at: datetime, lat=52.52, lon=13.40, **extra) -> dict:
    return {"lat": lat, "lon": lon, "at": at.isoformat(), **extra}


def url(paramedic) -> str:
    return f"/api/v1/paramedics/{paramedic.id}/locations"


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


class TestRecord:
    def test_it_stores_every_fix_and_moves_the_last_location_to_the_newest(
        self, paramedic, paramedic_client, now
    ):
        fixes = [
            fix(now - timedelta(seconds=10), lat=52.50, accuracy_m=8.5),
            fix(now, lat=52.52, speed_mps=13.9, heading_deg=270),
            fix(now - timedelta(seconds=5), lat=52.51),
        ]

        response = paramedic_client.post(url(paramedic), {"fixes": fixes}, format="json")

        assert response.status_code == 200, response.content
        assert response.json() == {
            "received": 3,
            "newest_at": now.isoformat().replace("+00:00", "Z"),
        }
        stored = list(LocationFix.objects.filter(paramedic=paramedic).order_by("at"))
        assert [f.lat for f in stored] == [52.50, 52.51, 52.52]
        assert (stored[0].accuracy_m, stored[2].speed_mps, stored[2].heading_deg) == (
            8.5,
            13.9,
            270,
        )
        paramedic.refresh_from_db()
        assert (paramedic.last_lat, paramedic.last_location_at) == (52.52, now)

    def test_it_stores_a_repeated_batch_once(self, paramedic, paramedic_client, now):
        body = {"fixes": [fix(now - timedelta(seconds=5)), fix(now)]}
        first = paramedic_client.post(url(paramedic), body, format="json")
        again = paramedic_client.post(url(paramedic), body, format="json")
        overlapping = paramedic_client.post(
            url(paramedic), {"fixes": [fix(now), fix(now + timedelta(seconds=5))]}, format="json"
        )

        assert first.json() == again.json()
        assert overlapping.status_code == 200
        assert LocationFix.objects.filter(paramedic=paramedic).count() == 3

    def test_two_fixes_of_one_time_in_a_batch_are_one(self, paramedic, paramedic_client, now):
        response = paramedic_client.post(
            url(paramedic), {"fixes": [fix(now, lat=1), fix(now, lat=2)]}, format="json"
        )

        assert response.status_code == 200
        assert list(LocationFix.objects.values_list("lat", flat=True)) == [1]
        paramedic.refresh_from_db()
        assert paramedic.last_lat == 1

    def test_an_older_batch_never_moves_the_last_location_back(
        self, paramedic, paramedic_client, now
    ):
        paramedic_client.post(url(paramedic), {"fixes": [fix(now, lat=10)]}, format="json")
        paramedic.refresh_from_db()
        updated_at = paramedic.updated_at

        late = paramedic_client.post(
            url(paramedic), {"fixes": [fix(now - timedelta(hours=2), lat=20)]}, format="json"
        )

        assert late.status_code == 200
        paramedic.refresh_from_db()
        assert (paramedic.last_lat, paramedic.last_location_at) == (10, now)
        assert paramedic.updated_at == updated_at  # nothing changed: the ETag holds
        assert LocationFix.objects.count() == 2  # the late fix is in the trail

    def test_a_patched_location_and_fixes_keep_the_newest(self, paramedic, paramedic_client, now):
        paramedic_client.patch(
            f"/api/v1/paramedics/{paramedic.id}",
            {"last_location": {"lat": 1, "lon": 1, "recorded_at": now.isoformat()}},
            format="json",
        )
        paramedic_client.post(
            url(paramedic), {"fixes": [fix(now - timedelta(seconds=30), lat=2)]}, format="json"
        )
        paramedic.refresh_from_db()
        assert paramedic.last_lat == 1

        paramedic_client.post(
            url(paramedic), {"fixes": [fix(now + timedelta(seconds=5), lat=3)]}, format="json"
        )
        response = paramedic_client.get(f"/api/v1/paramedics/{paramedic.id}")
        assert response.json()["last_location"]["lat"] == 3

    @pytest.mark.parametrize(
        ("offset", "message"),
        [
            (timedelta(minutes=3), "more than 2 minutes in the future"),
            (-timedelta(hours=25), "more than 24 hours in the past"),
        ],
    )
    def test_a_fix_out_of_the_device_time_bounds_refuses_the_batch(
        self, paramedic, paramedic_client, now, offset, message
    ):
        response = paramedic_client.post(
            url(paramedic), {"fixes": [fix(now), fix(now + offset)]}, format="json"
        )

        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid_time"
        assert message in body["detail"]
        assert body["errors"]["fixes"][0] == {}
        assert body["errors"]["fixes"][1]["at"][0]["code"] == "invalid_time"
        assert not LocationFix.objects.exists()
        paramedic.refresh_from_db()
        assert paramedic.last_location_at is None

    def test_the_clock_skew_is_the_setting(self, paramedic, paramedic_client, now, settings):
        settings.DEVICE_CLOCK_SKEW_SECONDS = 600
        response = paramedic_client.post(
            url(paramedic), {"fixes": [fix(now + timedelta(minutes=9))]}, format="json"
        )
        assert response.status_code == 200

    def test_a_batch_over_the_maximum_is_refused_before_its_fixes_are_read(
        self, paramedic, paramedic_client, now, settings
    ):
        settings.LOCATION_BATCH_MAX = 3
        fixes = [fix(now - timedelta(seconds=i)) for i in range(4)]

        response = paramedic_client.post(url(paramedic), {"fixes": fixes}, format="json")

        assert response.status_code == 400
        assert response.json()["errors"]["fixes"]["non_field_errors"][0]["code"] == "max_length"
        assert not LocationFix.objects.exists()

    def test_an_empty_batch_is_refused(self, paramedic, paramedic_client):
        response = paramedic_client.post(url(paramedic), {"fixes": []}, format="json")
        assert response.status_code == 400
        assert response.json()["errors"]["fixes"]["non_field_errors"][0]["code"] == "empty"

    def test_an_idempotency_key_replays_the_first_answer(self, paramedic, paramedic_client, now):
        body = {"fixes": [fix(now)]}
        key = {"HTTP_IDEMPOTENCY_KEY": "k1"}
        first = paramedic_client.post(url(paramedic), body, format="json", **key)
        again = paramedic_client.post(url(paramedic), body, format="json", **key)

        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"

    def test_one_insert_and_one_update_per_batch(self, paramedic, now, django_assert_num_queries):
        fixes = [
            {"lat": 52.5, "lon": 13.4, "at": now - timedelta(seconds=5 * i)} for i in range(120)
        ]
        # In one transaction (here a SAVEPOINT ... RELEASE inside the test's own):
        # 1. INSERT INTO paramedics_locationfix ... (120 rows) ON CONFLICT DO NOTHING
        # 2. UPDATE paramedics_paramedic SET last_lat, ... WHERE id AND (none or older)
        with django_assert_num_queries(2 + 2):
            location_fixes_record(paramedic=paramedic, fixes=fixes)
        # Again: the same two, storing nothing new and moving nothing.
        with django_assert_num_queries(2 + 2):
            location_fixes_record(paramedic=paramedic, fixes=fixes)
        assert LocationFix.objects.count() == 120

    def test_a_device_request_costs_the_batch_two_statements(
        self, paramedic, paramedic_client, now, django_assert_num_queries
    ):
        body = {"fixes": [fix(now - timedelta(seconds=5 * i)) for i in range(120)]}
        # 1. the token's user with its paramedic profile (authentication, as on every
        # request); 2. the INSERT of the batch; 3. the UPDATE of the last location;
        # the two in one transaction (SAVEPOINT and RELEASE inside the test's).
        with django_assert_num_queries(3 + 2):
            response = paramedic_client.post(url(paramedic), body, format="json")
        assert response.status_code == 200


class TestTrail:
    def test_a_supervisor_reads_a_window_oldest_first(self, paramedic, supervisor_client, now):
        other = ParamedicFactory()
        for paramedic_, minutes in ((paramedic, (50, 30, 10, 1)), (other, (20,))):
            location_fixes_record(
                paramedic=paramedic_,
                fixes=[
                    {"lat": m, "lon": 0, "at": now - timedelta(minutes=m), "accuracy_m": 5}
                    for m in minutes
                ],
                now=now,
            )

        since = (now - timedelta(minutes=40)).isoformat()
        until = (now - timedelta(minutes=1)).isoformat()
        response = supervisor_client.get(url(paramedic), {"since": since, "until": until})

        assert response.status_code == 200, response.content
        data = response.json()
        assert data["count"] == 2
        assert [row["lat"] for row in data["results"]] == [30, 10]  # until is exclusive
        assert data["results"][0] == {
            "at": (now - timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "lat": 30.0,
            "lon": 0.0,
            "accuracy_m": 5.0,
            "speed_mps": None,
            "heading_deg": None,
            "received_at": now.isoformat().replace("+00:00", "Z"),
        }

    def test_the_default_window_is_the_last_hour(self, paramedic, supervisor_client, now):
        location_fixes_record(
            paramedic=paramedic,
            fixes=[{"lat": m, "lon": 0, "at": now - timedelta(minutes=m)} for m in (90, 30)],
        )
        response = supervisor_client.get(url(paramedic))
        assert [row["lat"] for row in response.json()["results"]] == [30]

    @pytest.mark.parametrize(
        "query",
        [
            {"since": "2026-12-02T00:00:00Z", "until": "2026-12-03T00:00:01Z"},  # over 24 h
            {"since": "2026-12-02T00:00:00Z", "until": "2026-12-02T00:00:00Z"},
            {"since": "2026-12-03T00:00:00Z", "until": "2026-12-02T00:00:00Z"},
        ],
    )
    def test_a_window_that_is_empty_or_too_long_is_refused(
        self, paramedic, supervisor_client, query
    ):
        response = supervisor_client.get(url(paramedic), query)
        assert response.status_code == 400
        assert response.json()["errors"]["until"][0]["code"] == "invalid_window"

    def test_an_unknown_parameter_is_refused(self, paramedic, supervisor_client):
        response = supervisor_client.get(url(paramedic), {"from": "2026-12-02T00:00:00Z"})
        assert response.status_code == 400

    def test_its_queries_do_not_grow_with_the_trail(
        self, paramedic, supervisor, now, django_assert_num_queries
    ):
        location_fixes_record(
            paramedic=paramedic,
            fixes=[{"lat": 1, "lon": 1, "at": now - timedelta(seconds=s)} for s in range(100)],
        )
        client = client_for(supervisor)
        # 1. the token's user with its paramedic profile (none); 2. its groups (the
        # role); 3. the paramedic in the URL; 4. the first page's rows (and one
        # more); 5. COUNT(*) (the page is full).
        with django_assert_num_queries(5):
            response = client.get(url(paramedic), {"page_size": 50})
        assert len(response.json()["results"]) == 50


class TestPurge:
    def test_it_removes_fixes_past_the_retention(self, paramedic, settings, now):
        settings.LOCATION_RETENTION_DAYS = 2
        # Within the 24 h a device may report back, relative to each batch's `now`.
        for days in (0, 1, 3, 5):
            location_fixes_record(
                paramedic=paramedic,
                fixes=[{"lat": days, "lon": 0, "at": now - timedelta(days=days)}],
                now=now - timedelta(days=days),
            )

        location_trail_maintain(now=now)

        kept = sorted(LocationFix.objects.values_list("lat", flat=True))
        assert kept == [0, 1]

    @pytest.fixture
    def no_day_partitions(self):
        """Day partitions outlive a test's rows: drop them after (the DEFAULT stays)."""
        yield
        drop_day_partitions_before(table="paramedics_locationfix", column="at", day=date.max)

    @pytest.mark.postgres
    @pytest.mark.django_db(transaction=True)
    @pytest.mark.usefixtures("no_day_partitions")
    def test_on_postgresql_days_are_partitions_dropped_whole(self, paramedic, settings):
        settings.LOCATION_RETENTION_DAYS = 2
        settings.LOCATION_PARTITION_DAYS_AHEAD = 1
        now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
        # Before any day exists the DEFAULT partition takes the fixes.
        for days in (0, 1, 3):
            location_fixes_record(
                paramedic=paramedic,
                fixes=[{"lat": days, "lon": 0, "at": now - timedelta(days=days)}],
                now=now - timedelta(days=days),
            )
        assert _rows_in("paramedics_locationfix_pdefault") == 3

        first = location_trail_maintain(now=now - timedelta(days=3))
        # Days 12-03 .. 12-05 created; 12-04's fix moved out of the default.
        assert first.partitions_created == [
            "paramedics_locationfix_p20261203",
            "paramedics_locationfix_p20261204",
            "paramedics_locationfix_p20261205",
        ]
        assert _rows_in("paramedics_locationfix_p20261204") == 1
        assert _rows_in("paramedics_locationfix_pdefault") == 2

        second = location_trail_maintain(now=now)
        assert second.partitions_created == [
            "paramedics_locationfix_p20261206",
            "paramedics_locationfix_p20261207",
            "paramedics_locationfix_p20261208",
        ]
        # The cut-off is 12-05 15:00: the days before 12-05 go whole.
        assert second.partitions_dropped == [
            "paramedics_locationfix_p20261203",
            "paramedics_locationfix_p20261204",
        ]
        assert _rows_in("paramedics_locationfix_pdefault") == 0
        assert sorted(LocationFix.objects.values_list("lat", flat=True)) == [0, 1]
        # Running again finds nothing to do.
        third = location_trail_maintain(now=now)
        assert (third.partitions_created, third.partitions_dropped, third.rows_deleted) == (
            [],
            [],
            0,
        )
        # A fix lands in its day's partition, and the key still holds across them.
        location_fixes_record(paramedic=paramedic, fixes=[{"lat": 0, "lon": 0, "at": now}], now=now)
        assert _rows_in("paramedics_locationfix_p20261207") == 1


def _rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - the test's own names
        return cursor.fetchone()[0]
