"""The benchmark seeding command: wipes, seeds through the services, mints tokens."""

import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework_simplejwt.tokens import AccessToken

from integrations.models import OutboxEvent
from paramedics.models import Paramedic, ParamedicStatus
from tasks.models import EmergencyTask, TaskStatus


def test_it_refuses_without_the_wipe_flag(db):
    with pytest.raises(CommandError, match="--yes-wipe-this-database"):
        call_command("seed_load")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_seeds_history_active_and_pending_tasks(tmp_path):
    output = tmp_path / "seed.json"
    call_command(
        "seed_load",
        "--yes-wipe-this-database",
        "--paramedics=6",
        "--tasks=30",
        "--active=2",
        "--pending=3",
        f"--output={output}",
    )

    seed = json.loads(output.read_text())
    assert Paramedic.objects.count() == len(seed["paramedics"]) == 6
    assert EmergencyTask.objects.count() == 30  # 25 finished, 2 active, 3 pending
    active = {p["active"][0]: p["active"][1] for p in seed["paramedics"] if p["active"]}
    assert sorted(active.values()) == [TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS]
    for task_id, status in active.items():
        assert EmergencyTask.objects.get(pk=task_id).status == status
    assert EmergencyTask.objects.filter(status=TaskStatus.PENDING).count() == 3
    finished = EmergencyTask.objects.filter(status__in=[TaskStatus.COMPLETED, TaskStatus.CANCELLED])
    assert finished.count() == 30 - 2 - 3
    assert Paramedic.objects.filter(status=ParamedicStatus.ON_TASK).count() == 2
    assert not OutboxEvent.objects.exists()  # the bench starts with an empty outbox
    token = AccessToken(seed["paramedics"][0]["token"])
    assert str(token["user_id"]) == str(
        Paramedic.objects.get(pk=seed["paramedics"][0]["id"]).user_id
    )
