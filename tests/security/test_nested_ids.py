"""The caller's own URL, someone else's object (BOLA through the nested id)."""

import uuid
from types import SimpleNamespace

import pytest

from tests.helpers import API, Caller, db_state, upload


def _unknown_task():
    return SimpleNamespace(id=uuid.uuid4())


@pytest.mark.parametrize("target", ["anothers_task", "pending_task", "unknown_task"])
def test_status_report_on_own_url_with_anothers_task_is_404(world, target):
    """B reports on its own URL, naming A's task (or a pending or an unknown one)."""
    b = world.other_paramedic
    task = {"anothers_task": world.task, "pending_task": world.pending}.get(target)
    task = task or _unknown_task()
    client = Caller(b.user)
    before = db_state()
    response = client.post(
        f"{API}/paramedics/{b.id}/tasks/{task.id}", {"status": "in_progress"}, format="json"
    )
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    assert db_state() == before


@pytest.mark.parametrize("target", ["anothers_task", "pending_task"])
def test_upload_on_own_url_with_anothers_task_does_not_reveal_it(world, target):
    b = world.other_paramedic
    task = world.task if target == "anothers_task" else world.pending
    client = Caller(b.user)
    unknown = upload(client, b, _unknown_task(), world.other_xray_content)
    assert unknown.status_code == 404

    before = db_state()
    response = upload(client, b, task, world.other_xray_content)
    assert db_state() == before
    assert (response.status_code, response.json()) == (unknown.status_code, unknown.json())


def test_upload_on_own_url_with_anothers_task_stores_nothing(world):
    """The part of the above that holds today: nothing is written or stored."""
    b = world.other_paramedic
    client = Caller(b.user)
    before = db_state()
    response = upload(client, b, world.task, world.other_xray_content)
    assert response.status_code in (400, 404)
    assert {"code", "detail"} <= response.json().keys()
    assert db_state() == before
