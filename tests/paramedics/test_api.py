"""Paramedic endpoints: creation, validation, updates, listing (design §5)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from paramedics.models import Paramedic, ParamedicStatus
from tests.factories import ParamedicFactory, StationFactory, put_on_task
from tests.helpers import client_for

User = get_user_model()


def valid_body(**overrides):
    body = {
        "badge_number": "M-77",
        "first_name": "Mary",
        "last_name": "Seacole",
        "email": "Mary.Seacole@ems.example.org",
        "phone": "+447700900123",
        "certification_level": "critical_care",
        "status": "available",
        "base_station": "Riverside",
        "last_location": {"lat": 51.5, "lon": -0.12},
        "password": "a-strong-passphrase-42",
    }
    body.update(overrides)
    return body


@pytest.fixture
def stations(db):
    """The stations the bodies here name (base_station is a station's code)."""
    return [StationFactory(code=code) for code in ("Riverside", "South")]


@pytest.mark.usefixtures("stations")
class TestCreate:
    def test_it_creates_profile_and_login_user(self, supervisor_client, anon_client):
        response = supervisor_client.post("/api/v1/paramedics", valid_body())

        assert response.status_code == 201, response.content
        data = response.json()
        assert data["badge_number"] == "M-77"
        assert data["email"] == "mary.seacole@ems.example.org"
        assert data["status"] == "available"
        assert data["last_location"]["lat"] == 51.5
        assert data["last_location"]["recorded_at"]
        assert "password" not in data
        paramedic = Paramedic.objects.get(pk=data["id"])
        assert paramedic.user.username == "M-77"
        # The badge number and password log in.
        token = anon_client.post(
            "/api/v1/auth/token/", {"username": "M-77", "password": "a-strong-passphrase-42"}
        )
        assert token.status_code == 200
        assert {"access", "refresh"} <= token.json().keys()

    def test_it_creates_without_password_as_unusable(self, supervisor_client):
        body = valid_body()
        del body["password"]
        response = supervisor_client.post("/api/v1/paramedics/", body)
        assert response.status_code == 201
        assert not User.objects.get(username="M-77").has_usable_password()

    def test_it_defaults_status_to_off_duty(self, supervisor_client):
        body = valid_body()
        del body["status"]
        response = supervisor_client.post("/api/v1/paramedics", body)
        assert response.json()["status"] == "off_duty"

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("phone", "0301234", "invalid_phone"),
            ("phone", "+0123456", "invalid_phone"),
            ("phone", "+1234567890123456", "max_length"),
            ("certification_level", "surgeon", "invalid_choice"),
            ("status", "on_task", "invalid_choice"),
            ("email", "not-an-email", "invalid"),
            ("badge_number", "has space", "invalid"),
            ("badge_number", "", "blank"),
            ("first_name", None, "null"),
            ("last_location", {"lat": 90.5, "lon": 0}, "max_value"),
            ("last_location", {"lat": 0, "lon": -180.01}, "min_value"),
            ("last_location", {"lat": "NaN", "lon": 0}, "invalid"),
            ("last_location", {"lat": 1}, "required"),
            ("password", "123", "password_too_short"),
        ],
    )
    def test_it_rejects_invalid_field(self, supervisor_client, field, value, code):
        response = supervisor_client.post("/api/v1/paramedics", valid_body(**{field: value}))

        assert response.status_code == 400, response.content
        data = response.json()
        assert data["code"] == "invalid"
        assert field in data["errors"]
        flat = str(data["errors"][field])
        assert code in flat or "message" in flat
        assert not Paramedic.objects.exists()
        assert not User.objects.filter(username="M-77").exists()

    def test_it_rejects_missing_required_fields(self, supervisor_client):
        response = supervisor_client.post("/api/v1/paramedics", {})
        errors = response.json()["errors"]
        assert response.status_code == 400
        for field in ("badge_number", "first_name", "last_name", "email", "certification_level"):
            assert errors[field][0]["code"] == "required"

    @pytest.mark.parametrize(
        ("overrides", "field", "code"),
        [
            ({"badge_number": "b-1"}, "badge_number", "duplicate_badge_number"),
            ({"email": "B-1@EMS.example.org"}, "email", "duplicate_email"),
        ],
    )
    def test_it_answers_409_on_duplicates(
        self, supervisor_client, paramedic, overrides, field, code
    ):
        paramedic.email = "b-1@ems.example.org"
        paramedic.save()
        response = supervisor_client.post("/api/v1/paramedics", valid_body(**overrides))

        assert response.status_code == 409
        data = response.json()
        assert data["code"] == "duplicate"
        assert data["errors"][field][0]["code"] == code
        assert Paramedic.objects.count() == 1

    def test_it_rejects_badge_taken_by_another_login(self, supervisor_client, supervisor):
        response = supervisor_client.post("/api/v1/paramedics", valid_body(badge_number="sup"))
        assert response.status_code == 409
        assert response.json()["errors"]["badge_number"][0]["code"] == "duplicate_badge_number"

    def test_it_ignores_read_only_fields(self, supervisor_client):
        body = valid_body(id="00000000-0000-0000-0000-000000000001", created_at="2001-01-01")
        response = supervisor_client.post("/api/v1/paramedics", body)
        assert response.status_code == 201
        assert response.json()["id"] != body["id"]
        assert not response.json()["created_at"].startswith("2001")


@pytest.mark.usefixtures("stations")
class TestUpdate:
    def test_supervisor_updates_any_field_and_login_follows(self, supervisor_client, paramedic):
        response = supervisor_client.patch(
            f"/api/v1/paramedics/{paramedic.id}",
            {"badge_number": "B-100", "certification_level": "emt", "base_station": "South"},
        )
        assert response.status_code == 200, response.content
        paramedic.refresh_from_db()
        paramedic.user.refresh_from_db()
        assert paramedic.badge_number == "B-100"
        assert paramedic.user.username == "B-100"
        assert paramedic.certification_level == "emt"

    def test_supervisor_can_reset_password(self, supervisor_client, paramedic, anon_client):
        response = supervisor_client.patch(
            f"/api/v1/paramedics/{paramedic.id}", {"password": "another-strong-one-77"}
        )
        assert response.status_code == 200
        login = anon_client.post(
            "/api/v1/auth/token", {"username": "B-1", "password": "another-strong-one-77"}
        )
        assert login.status_code == 200

    def test_self_updates_phone_status_location(self, paramedic_client, paramedic):
        recorded = (timezone.now() - timedelta(minutes=1)).isoformat()
        response = paramedic_client.patch(
            f"/api/v1/paramedics/{paramedic.id}/",
            {
                "phone": "+4915112345678",
                "status": "off_duty",
                "last_location": {"lat": 52.52, "lon": 13.405, "recorded_at": recorded},
            },
        )
        assert response.status_code == 200, response.content
        paramedic.refresh_from_db()
        assert paramedic.phone == "+4915112345678"
        assert paramedic.status == ParamedicStatus.OFF_DUTY
        assert (paramedic.last_lat, paramedic.last_lon) == (52.52, 13.405)

    @pytest.mark.parametrize(
        "field_value",
        [
            {"certification_level": "critical_care"},
            {"badge_number": "B-999"},
            {"email": "me@example.org"},
            {"base_station": "Elsewhere"},
            {"first_name": "Someone"},
            {"password": "sneaky-password-1234"},
        ],
    )
    def test_self_cannot_change_supervisor_fields(self, paramedic_client, paramedic, field_value):
        before = Paramedic.objects.values().get(pk=paramedic.pk)
        response = paramedic_client.patch(
            f"/api/v1/paramedics/{paramedic.id}", {**field_value, "phone": "+4930111111"}
        )

        assert response.status_code == 403
        data = response.json()
        assert data["code"] == "field_not_editable"
        assert list(data["errors"]) == list(field_value)
        # Nothing half-applied: the allowed phone change did not go through either.
        assert Paramedic.objects.values().get(pk=paramedic.pk) == before

    def test_self_may_put_back_what_it_read(self, paramedic_client, paramedic):
        current = paramedic_client.get(f"/api/v1/paramedics/{paramedic.id}").json()
        current["phone"] = "+4930555555"
        response = paramedic_client.put(f"/api/v1/paramedics/{paramedic.id}", current)
        assert response.status_code == 200, response.content
        assert response.json()["phone"] == "+4930555555"

    @pytest.mark.parametrize("who", ["self", "supervisor"])
    def test_nobody_sets_on_task_by_hand(self, role_users, paramedic, who):
        response = client_for(role_users[who]).patch(
            f"/api/v1/paramedics/{paramedic.id}", {"status": "on_task"}
        )
        assert response.status_code == 400
        assert response.json()["errors"]["status"][0]["code"] == "invalid_choice"

    @pytest.mark.parametrize("who", ["self", "supervisor"])
    def test_nobody_leaves_on_task_by_hand(self, role_users, paramedic, who):
        put_on_task(paramedic)
        response = client_for(role_users[who]).patch(
            f"/api/v1/paramedics/{paramedic.id}", {"status": "off_duty"}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.ON_TASK

    def test_it_ignores_an_older_location_fix(self, paramedic_client, paramedic):
        now = timezone.now()
        url = f"/api/v1/paramedics/{paramedic.id}"
        paramedic_client.patch(
            url, {"last_location": {"lat": 10, "lon": 10, "recorded_at": now.isoformat()}}
        )
        old = (now - timedelta(minutes=5)).isoformat()
        response = paramedic_client.patch(
            url, {"last_location": {"lat": 20, "lon": 20, "recorded_at": old}}
        )
        assert response.status_code == 200
        assert response.json()["last_location"]["lat"] == 10

    def test_it_rejects_a_location_from_the_future(self, paramedic_client, paramedic):
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        response = paramedic_client.patch(
            f"/api/v1/paramedics/{paramedic.id}",
            {"last_location": {"lat": 1, "lon": 1, "recorded_at": future}},
        )
        assert response.status_code == 400
        assert response.json()["errors"]["last_location"]["recorded_at"][0]["code"] == (
            "future_timestamp"
        )

    def test_supervisor_duplicate_email_on_update_is_409(
        self, supervisor_client, paramedic, other_paramedic
    ):
        response = supervisor_client.patch(
            f"/api/v1/paramedics/{paramedic.id}", {"email": other_paramedic.email}
        )
        assert response.status_code == 409
        assert response.json()["errors"]["email"][0]["code"] == "duplicate_email"

    def test_unknown_id_is_404(self, supervisor_client, db):
        for bad in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            response = supervisor_client.get(f"/api/v1/paramedics/{bad}")
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"


class TestPartialLocation:
    """A PATCH replaces a location whole (design §16): a partial one is 400, not 500."""

    @pytest.mark.parametrize(
        ("location", "missing"),
        [
            ({}, {"lat", "lon"}),
            ({"lat": 50.1}, {"lon"}),
            ({"lon": 8.6}, {"lat"}),
            ({"recorded_at": "2026-01-01T00:00:00Z"}, {"lat", "lon"}),
        ],
    )
    @pytest.mark.parametrize("who", ["self", "supervisor"])
    def test_a_partial_location_is_invalid_input(
        self, paramedic, supervisor, who, location, missing
    ):
        caller = paramedic.user if who == "self" else supervisor
        before = Paramedic.objects.filter(pk=paramedic.pk).values().get()
        response = client_for(caller).patch(
            f"/api/v1/paramedics/{paramedic.id}", {"last_location": location}, format="json"
        )
        assert response.status_code == 400, response.content
        errors = response.json()["errors"]["last_location"]
        assert set(errors) == missing
        assert {e["code"] for name in missing for e in errors[name]} == {"required"}
        assert Paramedic.objects.filter(pk=paramedic.pk).values().get() == before

    def test_a_whole_location_is_accepted_in_a_patch(self, paramedic_client, paramedic):
        response = paramedic_client.patch(
            f"/api/v1/paramedics/{paramedic.id}",
            {"last_location": {"lat": 50.1, "lon": 8.6}},
            format="json",
        )
        assert response.status_code == 200, response.content
        assert response.json()["last_location"]["lat"] == 50.1


class TestList:
    @pytest.fixture
    def roster(self, db):
        ParamedicFactory(
            badge_number="A-1",
            status="available",
            certification_level="emt",
            base_station="North",
            first_name="Alice",
            last_name="Ames",
        )
        ParamedicFactory(
            badge_number="A-2",
            status="off_duty",
            certification_level="paramedic",
            base_station="South",
            first_name="Bob",
            last_name="Brown",
        )
        carol = ParamedicFactory(
            badge_number="A-3",
            certification_level="paramedic",
            base_station="north",
            first_name="Carol",
            last_name="Clark",
        )
        put_on_task(carol)

    @pytest.mark.parametrize(
        ("query", "badges"),
        [
            ("status=available", ["A-1"]),
            ("certification_level=paramedic", ["A-2", "A-3"]),
            ("base_station=North", ["A-1", "A-3"]),
            ("search=brown", ["A-2"]),
            ("search=A-3", ["A-3"]),
            ("status=on_task&base_station=north", ["A-3"]),
        ],
    )
    def test_it_filters(self, supervisor_client, roster, query, badges):
        response = supervisor_client.get(f"/api/v1/paramedics?{query}")
        assert response.status_code == 200
        assert sorted(p["badge_number"] for p in response.json()["results"]) == badges

    def test_it_rejects_unknown_filter_value(self, supervisor_client, roster):
        response = supervisor_client.get("/api/v1/paramedics?status=sleeping")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"

    def test_it_paginates_up_to_200(self, supervisor_client, db):
        ParamedicFactory.create_batch(205)
        page = supervisor_client.get("/api/v1/paramedics?page_size=500").json()
        assert page["count"] == 205
        assert len(page["results"]) == 200
        assert page["next"] and page["previous"] is None
        default = supervisor_client.get("/api/v1/paramedics").json()
        assert len(default["results"]) == 50

    def test_query_count_stays_constant(self, supervisor_client, django_assert_num_queries, db):
        # The JWT user (with its paramedic), its groups (role check), the page
        # (not full: it is its own count, no COUNT(*)).
        ParamedicFactory.create_batch(3)
        with django_assert_num_queries(3):
            assert supervisor_client.get("/api/v1/paramedics").status_code == 200
        ParamedicFactory.create_batch(60)
        with django_assert_num_queries(3):
            response = supervisor_client.get("/api/v1/paramedics?page_size=100")
        assert len(response.json()["results"]) == 63
