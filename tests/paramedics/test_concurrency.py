"""Concurrent writes to the roster decided by the database, not by luck."""

import pytest

from paramedics.models import Paramedic
from tests.helpers import client_for, in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_it_creates_one_paramedic_for_concurrent_duplicate_creates(supervisor):
    def create(i):
        body = {
            "badge_number": "RACE-1" if i % 2 else "race-1",
            "first_name": "Race",
            "last_name": f"Runner{i}",
            "email": f"racer{i}@ems.example.org",
            "certification_level": "emt",
        }
        return client_for(supervisor).post("/api/v1/paramedics", body, format="json")

    responses = in_parallel(8, create)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.content for r in responses]
    assert all(r.json()["code"] == "duplicate" for r in responses if r.status_code == 409)
    assert Paramedic.objects.filter(badge_number__iexact="race-1").count() == 1


def test_status_change_waits_for_the_row_lock(paramedic, supervisor):
    """A hand status change and another update never lose each other's fields."""

    def update(i):
        body = {"phone": f"+49301234{i:02d}"} if i % 2 else {"status": "off_duty"}
        return client_for(supervisor).patch(
            f"/api/v1/paramedics/{paramedic.id}", body, format="json"
        )

    responses = in_parallel(6, update)
    assert all(r.status_code == 200 for r in responses), [r.content for r in responses]
    paramedic.refresh_from_db()
    assert paramedic.status == "off_duty"
    assert paramedic.phone.startswith("+49301234")
