"""Concurrent writes to the roster decided by the database, not by luck."""

import uuid

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


def test_concurrent_overlapping_shifts_one_wins(paramedic, supervisor):
    """Each request passes the service's check before any commits: the exclusion
    constraint (btree_gist) decides, and the losers get a 409 naming the winner."""
    from datetime import timedelta

    from django.utils import timezone

    from paramedics.models import Shift, ShiftAssignment
    from tests.factories import StationFactory

    station = StationFactory()
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)

    def create(i):
        body = {
            "station": str(station.id),
            # Every pair overlaps: the same paramedic, periods shifted by minutes.
            "starts_at": (start + timedelta(minutes=10 * i)).isoformat(),
            "ends_at": (start + timedelta(hours=8, minutes=10 * i)).isoformat(),
            "paramedics": [str(paramedic.id)],
        }
        return client_for(supervisor).post("/api/v1/shifts", body, format="json")

    responses = in_parallel(6, create)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.content for r in responses]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert body["code"] == "shift_overlap"
            assert body["errors"]["paramedics"][0]["shift"] == winner
    assert ShiftAssignment.objects.filter(paramedic=paramedic).count() == 1
    # The losers' shifts were rolled back with their assignments: nothing half-written.
    assert list(Shift.objects.values_list("id", flat=True)) == [uuid.UUID(winner)]
