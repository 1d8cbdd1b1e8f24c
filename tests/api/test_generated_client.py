"""A client generated from the committed schema drives a field device's day.

What a device team does: generate a Python client from docs/openapi.yaml with
openapi-python-client, then log in, send a location, poll the task list, report
status changes, upload an X-ray and read its record, all through the generated
code (in-process over httpx's WSGI transport). A schema the real API does not
honour breaks here the way it would break them.
"""

import importlib
import io
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework_simplejwt.tokens import AccessToken

from config.wsgi import application
from tasks.services import task_assign
from tests.factories import ParamedicFactory, TaskFactory, UserFactory
from tests.xrays.samples import image_bytes

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    if not GENERATOR.exists():
        pytest.skip("openapi-python-client is in requirements/dev.txt")
    out = tmp_path_factory.mktemp("client")
    subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(ROOT / "docs" / "openapi.yaml"),
            "--meta",
            "none",
            "--config",
            str(ROOT / "docs" / "openapi-python-client.yaml"),
            "--output-path",
            str(out / "paramedic_client"),
            "--fail-on-warning",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("paramedic_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.startswith("paramedic_client")]:
            del sys.modules[name]


@pytest.fixture
def wsgi_transport(db):
    """Calls go straight to the WSGI app in this thread, inside the test's transaction
    (its request signals would close the test's connection; Django's test client
    disconnects them the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield httpx.WSGITransport(app=application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _module(package, dotted: str):
    return importlib.import_module(f"{package.__name__}.{dotted}")


def test_a_field_devices_day_through_the_generated_client(generated, wsgi_transport):
    api = lambda name: _module(generated, f"api.{name}")  # noqa: E731
    models = _module(generated, "models")
    types = _module(generated, "types")
    anonymous = generated.Client(
        base_url="http://testserver", httpx_args={"transport": wsgi_transport}
    )
    medic = ParamedicFactory(badge_number="GEN-1", last_lat=None, last_lon=None)
    supervisor = UserFactory(username="gen-sup", is_staff=True, groups=["supervisors"])

    # Log in with the badge number.
    tokens = api("auth.obtain_token").sync(
        client=anonymous,
        body=models.TokenObtainPairRequest(username="GEN-1", password=PASSWORD),
    )
    assert isinstance(tokens, models.TokenPair), tokens
    device = generated.AuthenticatedClient(
        base_url="http://testserver", token=tokens.access, httpx_args={"transport": wsgi_transport}
    )

    # Who am I: the id every device route takes, from the API (no lookup by hand).
    whoami = api("me.get_me").sync(client=device)
    assert isinstance(whoami, models.Me), whoami
    assert whoami.roles == [models.RolesEnum.PARAMEDIC]
    my_id = str(whoami.paramedic)
    assert my_id == str(medic.id)

    # A new paramedic has no fix yet: null, as documented.
    me = api("paramedics.get_paramedic").sync(client=device, id=my_id)
    assert isinstance(me, models.Paramedic), me
    assert me.last_location is None

    # Send a location.
    patch = models.PatchedParamedicWriteRequest(
        last_location=models.LocationRequest(lat=52.52, lon=13.405)
    )
    me = api("paramedics.update_paramedic").sync(client=device, id=my_id, body=patch)
    assert isinstance(me, models.Paramedic), me
    assert (me.last_location.lat, me.last_location.lon) == (52.52, 13.405)

    # Dispatch ranks candidates for a new task (a plain list) and assigns it.
    task = TaskFactory()
    console = generated.AuthenticatedClient(
        base_url="http://testserver",
        token=str(AccessToken.for_user(supervisor)),
        httpx_args={"transport": wsgi_transport},
    )
    ranked = api("tasks.list_task_candidates").sync(client=console, id=str(task.id), limit=5)
    assert isinstance(ranked, list), ranked
    assert [str(c.paramedic) for c in ranked] == [str(medic.id)]
    task_assign(task_id=task.pk, actor=supervisor, paramedic_id=medic.pk)
    page = api("paramedics.list_paramedic_tasks").sync(client=device, paramedic_id=my_id)
    assert isinstance(page, models.ParamedicTaskPage), page
    assert [str(t.id) for t in page.results] == [str(task.id)]
    assert page.next_ is None and page.previous is None and page.removed == []
    assert page.results[0].status == models.TaskStatusEnum.ASSIGNED

    # Acknowledge it, then start it (sent twice with one key: one effect, one answer).
    acknowledged = api("paramedics.record_task_milestone").sync(
        client=device,
        paramedic_id=my_id,
        task_id=str(task.id),
        body=models.TaskMilestoneRequest(milestone=models.MilestoneEnum.ACKNOWLEDGED),
    )
    assert isinstance(acknowledged, models.TaskDetail), acknowledged
    assert acknowledged.milestones.acknowledged_at is not None
    start = models.TaskStatusUpdateRequest(status=models.TaskStatusUpdateStatusEnum.IN_PROGRESS)
    started, again = (
        api("paramedics.report_task_status").sync(
            client=device,
            paramedic_id=my_id,
            task_id=str(task.id),
            body=start,
            idempotency_key="start-gen-1",
        )
        for _ in range(2)
    )
    assert isinstance(started, models.TaskDetail), started
    assert started.status == models.TaskStatusEnum.IN_PROGRESS
    assert started.milestones.en_route_at is not None
    assert again.to_dict() == started.to_dict()
    assert [h.to_status for h in started.history][-1] == models.TaskStatusEnum.IN_PROGRESS

    # Upload an X-ray taken on site, then read its record.
    content = image_bytes("PNG", color=(9, 9, 9))
    upload = models.XrayUploadRequest(
        image=types.File(payload=io.BytesIO(content), file_name="wrist.png", mime_type="image/png"),
        task=task.id,
        body_part="wrist",
    )
    record = api("paramedics.upload_xray").sync(
        client=device, paramedic_id=my_id, body=upload, idempotency_key="gen-1"
    )
    assert isinstance(record, models.XrayImage), record
    assert record.dicom is None  # a PNG: null, as documented
    detail = api("xrays.get_xray").sync(client=device, id=str(record.id))
    assert isinstance(detail, models.XrayDetail), detail
    assert detail.size_bytes == len(content)
    assert detail.download_url

    # Complete the task.
    done = api("paramedics.report_task_status").sync(
        client=device,
        paramedic_id=my_id,
        task_id=str(task.id),
        body=models.TaskStatusUpdateRequest(status=models.TaskStatusUpdateStatusEnum.COMPLETED),
    )
    assert isinstance(done, models.TaskDetail), done
    assert done.status == models.TaskStatusEnum.COMPLETED

    # A refusal comes back as the documented error model, not an exception.
    again = api("paramedics.report_task_status").sync(
        client=device,
        paramedic_id=my_id,
        task_id=str(task.id),
        body=models.TaskStatusUpdateRequest(status=models.TaskStatusUpdateStatusEnum.COMPLETED),
    )
    assert isinstance(again, models.Error)
    assert again.code == "invalid_transition"
