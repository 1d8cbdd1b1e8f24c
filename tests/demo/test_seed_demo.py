"""The demo shift command: realistic data in every state, safe to run twice."""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from core.roles import roles_of
from hospitals.models import Handoff, Hospital
from paramedics.models import Paramedic, Shift, ShiftAssignment, Station
from tasks.dispatch import rank_candidates
from tasks.models import EmergencyTask, TaskStatus
from xrays.models import XrayImage

User = get_user_model()


def test_it_fills_a_shift_with_every_state_once(db, capsys):
    call_command("seed_demo", password="demo-pass-123456")

    statuses = set(EmergencyTask.objects.values_list("status", flat=True))
    assert statuses == set(TaskStatus.values)
    assert Paramedic.objects.count() >= 20
    assert len(set(Paramedic.objects.values_list("base_station", flat=True))) == 4
    # Stations with a location and a week of shifts (design §14), with some gaps.
    assert Station.objects.filter(lat__isnull=False, min_staff=2).count() == 4
    assert Shift.objects.count() == 4 * 8 * 2 - 1
    assert Shift.objects.filter(assignments__isnull=True).count() == 0
    assert ShiftAssignment.objects.count() == 2 * (4 * 8 * 2) - 2 - 3
    assert {"png", "dicom"} <= set(XrayImage.objects.values_list("format", flat=True))
    completed = EmergencyTask.objects.filter(status=TaskStatus.COMPLETED).first()
    assert completed.created_at < completed.assigned_at < completed.started_at
    assert completed.started_at < completed.completed_at
    # Field milestones at device times, in order, so the overview has intervals to show.
    worked = EmergencyTask.objects.filter(status=TaskStatus.COMPLETED)
    assert all(t.en_route_at == t.started_at for t in worked)
    assert worked.filter(on_scene_at__isnull=False).count() == worked.count()
    assert worked.filter(transporting_at__isnull=False).exists()
    for task in worked:
        times = [
            t
            for t in (
                task.acknowledged_at,
                task.en_route_at,
                task.on_scene_at,
                task.at_patient_at,
                task.transporting_at,
                task.at_destination_at,
                task.completed_at,
            )
            if t
        ]
        assert times == sorted(times)
    # Every on_task paramedic holds exactly its active task (the constraints held).
    for medic in Paramedic.objects.filter(status="on_task"):
        assert medic.current_task.status in ("assigned", "in_progress")
    # Hospitals (design §21): one on diversion, a staff login, handoffs offloaded and
    # in flight, none to the hospital on diversion.
    assert Hospital.objects.count() == 4
    assert Hospital.objects.get(status="diversion").diversion_reason
    assert roles_of(User.objects.get(username="demo-ed-charite")) == ["hospital"]
    states = set(Handoff.objects.values_list("state", flat=True))
    assert {"offloaded", "sent"} <= states, states
    assert not Handoff.objects.filter(hospital__status="diversion").exists()
    for handoff in Handoff.objects.filter(state="offloaded"):
        assert handoff.sent_at < handoff.arrived_at <= handoff.offloaded_at
        assert handoff.task.completed_at == handoff.offloaded_at
    assert "demo-supervisor" in capsys.readouterr().out

    counts = (Paramedic.objects.count(), EmergencyTask.objects.count(), Shift.objects.count())
    call_command("seed_demo")
    assert (
        Paramedic.objects.count(),
        EmergencyTask.objects.count(),
        Shift.objects.count(),
    ) == counts


@pytest.mark.parametrize("hour", [3, 14])  # a night shift, a day shift
def test_the_demos_critical_fall_recommends_whom_a_dispatcher_would_send(db, hour):
    """The issue's case, demo-0029 (Kantstrasse 154, critical): the recommendation is the
    fastest crew, or a crew with the plan's certification within its allowance, and
    says why; at any hour the demo is seeded (the roster decides who is on shift)."""
    moment = timezone.now().replace(hour=hour, minute=30)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        call_command("seed_demo", password="demo-pass-123456")
        task = EmergencyTask.objects.get(request_id="demo-0029")
        ranked = rank_candidates(task)

    assert (task.priority, task.call_type_id, task.target_minutes) == ("critical", "fall", 8)
    assert task.address == "Kantstrasse 154, Berlin"
    top = ranked[0]
    tier = [c for c in ranked if c.off_shift == top.off_shift]
    fastest = min(c.eta_seconds for c in tier)
    qualified = [c for c in tier if c.preferred_certification]
    if top.preferred_certification:
        assert top.meets_target or top.eta_seconds <= fastest + 3 * 60
        assert top.eta_seconds == min(c.eta_seconds for c in qualified)
    else:
        assert top.eta_seconds == fastest
        assert any("intercept" in r or r.startswith("no ") for r in top.reasons)
    assert top.recommendation.startswith(top.paramedic.badge_number)

    # Each task has the call type of its complaint.
    pairs = set(EmergencyTask.objects.values_list("description", "call_type"))
    assert ("Fall at home, hip pain", "fall") in pairs
    assert len({call_type for _, call_type in pairs}) >= 5
