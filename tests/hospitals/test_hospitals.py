"""Hospitals, their status and their staff (design §21). Permission cells live in
tests/security/test_authorization.py; this file tests behaviour."""

import pytest

from core.roles import roles_of
from hospitals.models import Hospital, HospitalStatus
from tests.factories import HospitalFactory, staff_of
from tests.helpers import API, assert_json_error, client_for


def hospital_body(**overrides) -> dict:
    body = {
        "code": "CHARITE",
        "name": "Charité Mitte",
        "address": "Charitéplatz 1",
        "location": {"lat": 52.525, "lon": 13.377},
        "capabilities": ["stroke", "trauma_1", "stroke"],
        "ed_beds_available": 6,
    }
    body.update(overrides)
    return body


def test_it_creates_a_hospital(supervisor):
    response = client_for(supervisor).post(f"{API}/hospitals", hospital_body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["capabilities"] == ["stroke", "trauma_1"]
    assert (data["status"], data["diversion_reason"]) == ("open", "")
    assert data["location"] == {"lat": 52.525, "lon": 13.377}
    again = client_for(supervisor).post(f"{API}/hospitals", hospital_body(), format="json")
    assert_json_error(again, 409, "duplicate")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capabilities", ["cardiology"]),
        ("capabilities", "stroke"),
        ("location", {"lat": 91, "lon": 0}),
        ("ed_beds_available", -1),
        ("ed_beds_available", 1.5),
        ("name", "x" * 201),
        ("name", "Bad\x1bname"),
        ("code", "with space"),
        ("status", "closed"),
    ],
)
def test_it_refuses_bad_hospitals(supervisor, field, value):
    response = client_for(supervisor).post(
        f"{API}/hospitals", hospital_body(**{field: value}), format="json"
    )
    body = assert_json_error(response, 400, "invalid")
    assert field in body["errors"]
    assert not Hospital.objects.exists()


def test_staff_keep_their_own_status_only(supervisor):
    own, other = HospitalFactory(code="OWN"), HospitalFactory(code="OTHER")
    response = client_for(supervisor).post(
        f"{API}/hospitals/{own.pk}/staff",
        {"username": "ed-own", "password": "a-strong-passphrase-42"},
        format="json",
    )
    assert response.status_code == 201, response.content
    staff = own.staff.get().user
    assert roles_of(staff) == ["hospital"]
    client = client_for(staff)

    response = client.patch(
        f"{API}/hospitals/{own.pk}",
        {"status": "diversion", "diversion_reason": "CT down", "ed_beds_available": 0},
        format="json",
    )
    assert response.status_code == 200, response.content
    own.refresh_from_db()
    assert (own.status, own.diversion_reason, own.ed_beds_available) == (
        HospitalStatus.DIVERSION,
        "CT down",
        0,
    )
    # Open again: the reason goes.
    response = client.patch(f"{API}/hospitals/{own.pk}", {"status": "open"}, format="json")
    assert response.json()["diversion_reason"] == ""

    for url, body in (
        (f"{API}/hospitals/{own.pk}", {"name": "Renamed"}),
        (f"{API}/hospitals/{own.pk}", {"capabilities": ["burns"]}),
        (f"{API}/hospitals/{other.pk}", {"status": "diversion"}),
    ):
        assert_json_error(client.patch(url, body, format="json"), 403, "permission_denied")
    other.refresh_from_db()
    assert other.status == HospitalStatus.OPEN


def test_staff_usernames_are_checked(supervisor):
    hospital = HospitalFactory()
    staff_of(hospital, "taken")
    client = client_for(supervisor)
    url = f"{API}/hospitals/{hospital.pk}/staff"
    taken = client.post(url, {"username": "TAKEN", "password": "a-strong-passphrase-42"})
    assert_json_error(taken, 409, "duplicate")
    weak = client.post(url, {"username": "ed-2", "password": "123"}, format="json")
    assert "password" in assert_json_error(weak, 400, "invalid")["errors"]
