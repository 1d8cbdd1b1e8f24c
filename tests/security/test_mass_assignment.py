"""Mass assignment (OWASP API3): read-only, computed and ownership fields are ignored."""

import hashlib
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.roles import SUPERVISORS
from paramedics.models import Paramedic, ParamedicStatus
from tasks.models import EmergencyTask, TaskStatus
from tests.factories import put_on_task
from tests.helpers import (
    API,
    Caller,
    db_state,
    full_profile,
    new_paramedic_body,
    new_task_body,
    stored_keys,
    upload,
)
from tests.xrays.samples import image_bytes
from xrays.models import XrayImage

User = get_user_model()
FORGED_AT = "2001-01-01T00:00:00Z"
NEW_PHONE = "+4930555000"


def _actor(role, paramedic, supervisor):
    return paramedic.user if role == "own_paramedic" else supervisor


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
@pytest.mark.parametrize("method", ["patch", "put"])
def test_nobody_sets_on_task_by_hand(paramedic, supervisor, role, method):
    body = {"status": "on_task"}
    if method == "put":
        body = {**full_profile(paramedic), **body}
    client = Caller(_actor(role, paramedic, supervisor))
    before = db_state()

    response = getattr(client, method)(f"{API}/paramedics/{paramedic.id}", body, format="json")

    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "invalid"
    assert "status" in data["errors"]
    assert db_state() == before


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
def test_paramedic_update_ignores_read_only_fields(paramedic, other_paramedic, supervisor, role):
    theirs = put_on_task(other_paramedic)
    paramedic.refresh_from_db()
    original = Paramedic.objects.filter(pk=paramedic.pk).values().get()
    started = timezone.now()

    response = Caller(_actor(role, paramedic, supervisor)).patch(
        f"{API}/paramedics/{paramedic.id}",
        {
            "phone": NEW_PHONE,
            "id": str(uuid.uuid4()),
            "current_task": str(theirs.id),
            "created_at": FORGED_AT,
            "updated_at": FORGED_AT,
            "user": other_paramedic.user.pk,
            "is_staff": True,
            "is_superuser": True,
            "groups": [SUPERVISORS],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["id"], data["phone"], data["current_task"]) == (str(paramedic.id), NEW_PHONE, None)
    now = Paramedic.objects.filter(pk=paramedic.pk).values().get()
    changed = {k for k in now if now[k] != original[k]}
    assert changed == {"phone", "updated_at"}
    assert now["updated_at"] >= started
    user = User.objects.get(pk=paramedic.user.pk)
    assert not (user.is_staff or user.is_superuser or user.groups.exists())
    other_paramedic.refresh_from_db()
    assert (other_paramedic.current_task_id, other_paramedic.user_id) == (
        theirs.id,
        other_paramedic.user.pk,
    )


def test_paramedic_create_ignores_read_only_fields(supervisor, other_paramedic):
    theirs = put_on_task(other_paramedic)
    forged_id = str(uuid.uuid4())
    started = timezone.now()
    response = Caller(supervisor).post(
        f"{API}/paramedics",
        {
            **new_paramedic_body(),
            "id": forged_id,
            "current_task": str(theirs.id),
            "created_at": FORGED_AT,
            "updated_at": FORGED_AT,
            "user": supervisor.pk,
            "is_staff": True,
            "is_superuser": True,
            "groups": [SUPERVISORS],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    created = Paramedic.objects.get(pk=response.json()["id"])
    assert str(created.pk) != forged_id
    assert (created.status, created.current_task_id) == (ParamedicStatus.OFF_DUTY, None)
    assert created.created_at >= started
    assert created.user != supervisor
    assert not (created.user.is_staff or created.user.is_superuser or created.user.groups.exists())


@pytest.mark.parametrize("role", ["service", "supervisor"])
def test_task_create_ignores_state_and_ownership_fields(users, paramedic, other_service, role):
    caller = users[role]
    started = timezone.now()
    forged_id = str(uuid.uuid4())
    response = Caller(caller).post(
        f"{API}/tasks",
        {
            **new_task_body(),
            "id": forged_id,
            "status": "in_progress",
            "paramedic": str(paramedic.id),
            "assigned_at": FORGED_AT,
            "started_at": FORGED_AT,
            "created_at": FORGED_AT,
            "created_by": other_service.pk,
            "patient_details": {"name": "forged"},
            "history": [{"from_status": "pending", "to_status": "completed", "note": "forged"}],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    task = EmergencyTask.objects.get(pk=response.json()["id"])
    assert str(task.pk) != forged_id
    assert (task.status, task.paramedic_id, task.created_by) == (TaskStatus.PENDING, None, caller)
    assert (task.assigned_at, task.started_at, task.patient_details) == (None, None, None)
    assert task.created_at >= started
    assert list(task.history.values_list("from_status", "to_status")) == [("", "pending")]
    paramedic.refresh_from_db()
    assert (paramedic.status, paramedic.current_task_id) == (ParamedicStatus.AVAILABLE, None)


def test_assign_ignores_extra_fields(world, supervisor, other_service):
    started = timezone.now()
    pending = world.pending
    response = Caller(supervisor).post(
        f"{API}/tasks/{pending.id}/assign",
        {
            "paramedic": str(world.spare.id),
            "status": "completed",
            "assigned_at": FORGED_AT,
            "completed_at": FORGED_AT,
            "created_by": other_service.pk,
            "request_id": "forged",
            "history": [],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == TaskStatus.ASSIGNED
    assert parse_datetime(data["assigned_at"]) >= started
    task = EmergencyTask.objects.get(pk=pending.pk)
    assert (task.status, task.paramedic_id) == (TaskStatus.ASSIGNED, world.spare.id)
    assert task.assigned_at >= started
    assert task.completed_at is None
    assert (task.created_by_id, task.request_id) == (pending.created_by_id, pending.request_id)
    assert [h["to_status"] for h in data["history"]] == ["pending", "assigned"]


def test_status_report_ignores_extra_fields(world):
    started = timezone.now()
    a, task = world.paramedic, world.task
    response = Caller(a.user).post(
        f"{API}/paramedics/{a.id}/tasks/{task.id}",
        {
            "status": "in_progress",
            "paramedic": str(world.other_paramedic.id),
            "assigned_at": FORGED_AT,
            "started_at": FORGED_AT,
            "completed_at": FORGED_AT,
            "created_by": world.users["other_service"].pk,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    fresh = EmergencyTask.objects.get(pk=task.pk)
    assert (fresh.status, fresh.paramedic_id) == (TaskStatus.IN_PROGRESS, a.id)
    assert fresh.started_at >= started
    assert (fresh.assigned_at, fresh.completed_at) == (task.assigned_at, None)
    assert fresh.created_by_id == task.created_by_id


@pytest.mark.parametrize("role", ["own_paramedic", "supervisor"])
def test_xray_upload_ignores_computed_and_ownership_fields(
    paramedic, other_paramedic, supervisor, role
):
    caller = _actor(role, paramedic, supervisor)
    task = put_on_task(paramedic)
    forged_id = str(uuid.uuid4())
    started = timezone.now()
    content = image_bytes("PNG", size=(64, 48))

    response = upload(
        Caller(caller),
        paramedic,
        task,
        content,
        name="../../etc/evil.dcm",
        id=forged_id,
        sha256="0" * 64,
        size_bytes="1",
        format="dicom",
        content_type="application/dicom",
        width="9999",
        height="9999",
        paramedic=str(other_paramedic.id),
        uploaded_by=str(other_paramedic.user.pk),
        file="xrays/2001/01/forged.dcm",
        xray_service_id="xr-forged",
        created_at=FORGED_AT,
    )

    assert response.status_code == 201, response.content
    xray = XrayImage.objects.get(pk=response.json()["id"])
    assert str(xray.pk) != forged_id
    assert xray.sha256 == hashlib.sha256(content).hexdigest()
    assert (xray.size_bytes, xray.format, xray.content_type) == (len(content), "png", "image/png")
    assert (xray.width, xray.height) == (64, 48)
    assert (xray.paramedic, xray.uploaded_by, xray.task) == (paramedic, caller, task)
    assert re.fullmatch(r"xrays/\d{4}/\d{2}/[0-9a-f-]{36}\.png", xray.file.name)
    assert xray.xray_service_id == ""
    assert xray.created_at >= started
    with default_storage.open(xray.file.name, "rb") as handle:
        assert handle.read() == content
    assert stored_keys() == [xray.file.name]
