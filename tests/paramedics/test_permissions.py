"""Role x endpoint matrix for the paramedic endpoints (DESIGN §4, §5).

The target of every detail request is `paramedic` ("self"); "other_paramedic"
is a different paramedic, who must not even learn that the profile exists.
"""

import pytest

from tests.conftest import client_for

ROLES = ["anonymous", "supervisor", "service", "doctor", "self", "other_paramedic"]


def _create_body():
    return {
        "badge_number": "NEW-1",
        "first_name": "New",
        "last_name": "Medic",
        "email": "new1@ems.example.org",
        "certification_level": "emt",
    }


def _put_body(paramedic):
    return {
        "badge_number": paramedic.badge_number,
        "first_name": paramedic.first_name,
        "last_name": paramedic.last_name,
        "email": paramedic.email,
        "certification_level": paramedic.certification_level,
        "phone": "+4930999999",
        "status": "off_duty",
        "base_station": paramedic.base_station,
    }


# (name, method, detail?, body builder, expected status by role)
MATRIX = [
    (
        "list",
        "get",
        False,
        None,
        dict(anonymous=401, supervisor=200, service=403, doctor=403, self=403, other_paramedic=403),
    ),
    (
        "create",
        "post",
        False,
        lambda p: _create_body(),
        dict(anonymous=401, supervisor=201, service=403, doctor=403, self=403, other_paramedic=403),
    ),
    (
        "retrieve",
        "get",
        True,
        None,
        dict(anonymous=401, supervisor=200, service=403, doctor=403, self=200, other_paramedic=404),
    ),
    (
        "put",
        "put",
        True,
        _put_body,
        dict(anonymous=401, supervisor=200, service=403, doctor=403, self=200, other_paramedic=404),
    ),
    (
        "patch",
        "patch",
        True,
        lambda p: {"phone": "+4930888888"},
        dict(anonymous=401, supervisor=200, service=403, doctor=403, self=200, other_paramedic=404),
    ),
    (
        "delete",
        "delete",
        True,
        None,
        dict(anonymous=401, supervisor=405, service=403, doctor=403, self=405, other_paramedic=405),
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("endpoint", "method", "detail", "body", "expected"),
    MATRIX,
    ids=[row[0] for row in MATRIX],
)
def test_it_enforces_role_matrix(
    role_users, paramedic, role, endpoint, method, detail, body, expected
):
    client = client_for(role_users[role])
    url = f"/api/v1/paramedics/{paramedic.id}" if detail else "/api/v1/paramedics"
    data = body(paramedic) if body else None
    response = getattr(client, method)(url, data=data, format="json")

    assert response.status_code == expected[role], response.content
    body_json = response.json()
    if response.status_code >= 400:
        assert {"code", "detail"} <= body_json.keys()
    if endpoint in ("retrieve", "put", "patch") and response.status_code == 200:
        assert body_json["id"] == str(paramedic.id)


def test_it_answers_401_with_www_authenticate(anon_client, paramedic):
    response = anon_client.get("/api/v1/paramedics")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_treats_superusers_as_supervisors(superuser, paramedic):
    response = client_for(superuser).get("/api/v1/paramedics")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_it_does_not_let_staff_without_group_act_as_supervisor(db, paramedic):
    from tests.factories import UserFactory

    staff = UserFactory(username="clerk", is_staff=True)
    assert client_for(staff).get("/api/v1/paramedics").status_code == 403
    assert client_for(staff).get(f"/api/v1/paramedics/{paramedic.id}").status_code == 403
