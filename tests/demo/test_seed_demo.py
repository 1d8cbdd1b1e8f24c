"""The demo shift command: realistic data in every state, safe to run twice."""

from django.core.management import call_command

from paramedics.models import Paramedic, Shift, ShiftAssignment, Station
from tasks.models import EmergencyTask, TaskStatus
from xrays.models import XrayImage


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
    assert "demo-supervisor" in capsys.readouterr().out

    counts = (Paramedic.objects.count(), EmergencyTask.objects.count(), Shift.objects.count())
    call_command("seed_demo")
    assert (
        Paramedic.objects.count(),
        EmergencyTask.objects.count(),
        Shift.objects.count(),
    ) == counts
