"""Offload time per hospital on the dispatch overview (design §21)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hospitals.handoffs import handoff_send
from hospitals.models import Handoff, HandoffState
from hospitals.selectors import offload_times
from tasks.models import TaskStatus
from tasks.services import task_change_status
from tests.factories import HospitalFactory, ParamedicFactory, put_on_task

OVERVIEW = reverse("admin:tasks_overview")
REPORT = {"acuity": "urgent", "age_years": 50, "sex": "female", "chief_complaint": "Fall",
          "stable": True}  # fmt: skip


def offloaded(hospital, minutes: int | None, arrived_at):
    """A handoff to `hospital` that arrived at `arrived_at` and was offloaded `minutes`
    later (None: still waiting)."""
    crew = ParamedicFactory()
    task = put_on_task(crew)
    task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=crew.user)
    handoff = handoff_send(
        task_id=task.pk, paramedic_id=crew.pk, hospital_id=hospital.pk, report=REPORT
    )
    Handoff.objects.filter(pk=handoff.pk).update(
        state=HandoffState.ARRIVED if minutes is None else HandoffState.OFFLOADED,
        arrived_at=arrived_at,
        offloaded_at=None if minutes is None else arrived_at + timedelta(minutes=minutes),
    )


def test_the_overview_reports_offload_times_against_the_target(console_client, db):
    now = timezone.now()
    arrived = now - timedelta(hours=2)
    north, south = HospitalFactory(code="NORTH", name="North"), HospitalFactory(code="SOUTH")
    for minutes in (10, 20, 25, 40, -5):  # -5: a device clock ahead, left out
        offloaded(north, minutes, arrived)
    offloaded(south, 50, arrived)
    offloaded(south, None, arrived)  # still waiting: not a figure yet
    offloaded(south, 15, now - timedelta(days=3))  # outside the period

    figures = offload_times(now - timedelta(hours=24), now)

    assert [
        (f["hospital"].code, f["count"], f["dropped"], f["median"], f["p90"], f["met"])
        for f in figures
    ] == [
        ("NORTH", 4, 1, timedelta(minutes=20), timedelta(minutes=40), 3),
        ("SOUTH", 1, 0, timedelta(minutes=50), timedelta(minutes=50), 0),
    ]
    assert figures[0]["share"] == pytest.approx(0.75)
    html = console_client.get(OVERVIEW).content.decode()
    assert (
        '<tr data-hospital="NORTH"><th>North</th><td>4</td><td>20 min</td><td>40 min</td>'
        "<td>75 %</td><td>1</td></tr>"
    ) in html
    assert "within 30 min" in html
