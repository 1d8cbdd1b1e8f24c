"""Who counts as which role (design §4), beyond the table's seven callers."""

import pytest

from tests.factories import UserFactory
from tests.helpers import API, Caller


@pytest.mark.parametrize("path", ["/paramedics", "/tasks", "/paramedics/{id}/tasks"])
def test_anonymous_requests_are_401_with_www_authenticate(paramedic, path):
    response = Caller().get(API + path.format(id=paramedic.id))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_superusers_act_as_supervisors(superuser, paramedic):
    response = Caller(superuser).get(f"{API}/paramedics")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_staff_without_the_supervisors_group_is_no_supervisor(db, paramedic):
    staff = UserFactory(username="clerk", is_staff=True)
    assert Caller(staff).get(f"{API}/paramedics").status_code == 403
    assert Caller(staff).get(f"{API}/paramedics/{paramedic.id}").status_code == 403
