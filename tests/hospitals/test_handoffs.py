"""A crew's handoff to a hospital (design §21): the report, the hospital's side,
arrival at the milestone, offload freeing the crew."""

import uuid

import pytest

from hospitals.models import Handoff, HandoffState
from integrations.models import OutboxEvent
from paramedics.models import ParamedicStatus
from tasks.models import TaskStatus
from tests.factories import HospitalFactory, ParamedicFactory, put_on_task, staff_of
from tests.helpers import API, assert_json_error, client_for


def report(destination, **overrides) -> dict:
    body = {
        "hospital": str(destination.pk),
        "acuity": "emergent",
        "age_years": 67,
        "sex": "female",
        "chief_complaint": "Sudden left-sided weakness and slurred speech",
        "stable": False,
        "vitals": {
            "bp_systolic": 182,
            "bp_diastolic": 96,
            "pulse": 88,
            "resp_rate": 18,
            "spo2": 96,
            "temperature_c": 36.8,
            "gcs": 13,
        },
        "treatments": ["oxygen 2 l/min", "IV access"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def crew(db):
    return ParamedicFactory(badge_number="B-7")


@pytest.fixture
def task(crew):
    task = put_on_task(crew, call_type="stroke")
    response = client_for(crew.user).post(
        f"{API}/paramedics/{crew.pk}/tasks/{task.pk}", {"status": "in_progress"}, format="json"
    )
    assert response.status_code == 200, response.content
    return task


@pytest.fixture
def stroke_centre(db):
    return HospitalFactory(code="STROKE", capabilities=["stroke"])


def send(crew, task, body, **headers):
    return client_for(crew.user).post(
        f"{API}/tasks/{task.pk}/handoff", body, format="json", headers=headers
    )


def test_a_crews_day_through_a_hospital(crew, task, stroke_centre):
    HospitalFactory(code="GENERAL", lat=52.521, lon=13.405)  # nearer, but no stroke unit
    staff = client_for(staff_of(stroke_centre, "ed-stroke"))
    outsider = client_for(staff_of(HospitalFactory(code="ELSEWHERE"), "ed-elsewhere"))
    medic = client_for(crew.user)

    ranked = medic.get(f"{API}/tasks/{task.pk}/destinations").json()
    assert ranked[0]["hospital"]["code"] == "STROKE"

    key = str(uuid.uuid4())
    sent = send(crew, task, report(stroke_centre), **{"Idempotency-Key": key})
    assert sent.status_code == 201, sent.content
    handoff = sent.json()
    assert (handoff["state"], handoff["hospital"]) == ("sent", str(stroke_centre.pk))
    assert handoff["vitals"]["bp_systolic"] == 182
    assert handoff["eta"] > handoff["sent_at"]
    # A retry with the same key is the same report, not a second one.
    again = send(crew, task, report(stroke_centre), **{"Idempotency-Key": key})
    assert again.json()["id"] == handoff["id"]
    assert Handoff.objects.count() == 1

    listed = staff.get(f"{API}/hospitals/{stroke_centre.pk}/handoffs")
    assert listed.status_code == 200, listed.content
    incoming = listed.json()["results"]
    assert [row["id"] for row in incoming] == [handoff["id"]]
    # Another hospital sees nothing of it.
    assert_json_error(
        outsider.get(f"{API}/hospitals/{stroke_centre.pk}/handoffs"), 404, "not_found"
    )
    assert_json_error(outsider.get(f"{API}/handoffs/{handoff['id']}"), 404, "not_found")
    assert_json_error(
        outsider.post(f"{API}/handoffs/{handoff['id']}/acknowledge"), 404, "not_found"
    )

    acknowledged = staff.post(f"{API}/handoffs/{handoff['id']}/acknowledge")
    assert acknowledged.json()["state"] == "acknowledged", acknowledged.content
    assert_json_error(
        staff.post(f"{API}/handoffs/{handoff['id']}/offload"), 409, "invalid_transition"
    )

    arrived = medic.post(
        f"{API}/paramedics/{crew.pk}/tasks/{task.pk}/milestones",
        {"milestone": "at_destination"},
        format="json",
    )
    assert arrived.status_code == 200, arrived.content
    assert staff.get(f"{API}/handoffs/{handoff['id']}").json()["state"] == "arrived"

    offloaded = staff.post(f"{API}/handoffs/{handoff['id']}/offload")
    assert offloaded.json()["state"] == "offloaded", offloaded.content
    task.refresh_from_db()
    crew.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert crew.status == ParamedicStatus.AVAILABLE

    kinds = list(
        OutboxEvent.objects.filter(kind__startswith="handoff.")
        .order_by("created_at")
        .values_list("kind", flat=True)
        .distinct()
    )
    assert kinds == ["handoff.sent", "handoff.acknowledged", "handoff.arrived", "handoff.offloaded"]


def test_a_hospital_on_diversion_needs_the_crews_confirmation(crew, task, stroke_centre):
    stroke_centre.status, stroke_centre.diversion_reason = "diversion", "CT down"
    stroke_centre.save()
    refused = send(crew, task, report(stroke_centre))
    assert "CT down" in assert_json_error(refused, 409, "hospital_on_diversion")["detail"]
    assert not Handoff.objects.exists()
    confirmed = send(crew, task, report(stroke_centre, confirm_diversion=True))
    assert confirmed.status_code == 201, confirmed.content
    assert confirmed.json()["diversion_confirmed"] is True


def test_a_new_report_redirects_the_earlier_one(crew, task, stroke_centre):
    first = send(crew, task, report(stroke_centre)).json()
    other = HospitalFactory(code="OTHER", capabilities=["stroke"])
    second = send(crew, task, report(other))
    assert second.status_code == 201, second.content
    assert Handoff.objects.get(pk=first["id"]).state == HandoffState.REDIRECTED
    assert Handoff.objects.get(pk=second.json()["id"]).state == HandoffState.SENT
    cancelled = client_for(crew.user).post(f"{API}/handoffs/{second.json()['id']}/cancel")
    assert cancelled.json()["state"] == "cancelled"


def test_only_the_assigned_crew_reports_on_a_task_in_progress(crew, task, stroke_centre):
    stranger = ParamedicFactory(badge_number="B-8")
    assert_json_error(send(stranger, task, report(stroke_centre)), 404, "not_found")
    idle = put_on_task(ParamedicFactory(badge_number="B-9"))
    assert_json_error(send(idle.paramedic, idle, report(stroke_centre)), 409, "invalid_transition")
    unknown = send(crew, task, report(stroke_centre, hospital=str(uuid.uuid4())))
    body = assert_json_error(unknown, 400, "invalid")
    assert body["errors"]["hospital"][0]["code"] == "unknown_hospital"


def test_a_task_called_off_takes_its_report_with_it(crew, task, stroke_centre, supervisor):
    """The hospital must not wait for a patient who is not coming: cancelling the task
    ends its active report, in the same transaction."""
    sent = send(crew, task, report(stroke_centre)).json()

    response = client_for(supervisor).post(
        f"{API}/tasks/{task.pk}/cancel", {"reason": "caller withdrew"}, format="json"
    )

    assert response.status_code == 200, response.content
    ended = Handoff.objects.get(pk=sent["id"])
    assert ended.state == HandoffState.CANCELLED and ended.ended_at is not None
    seen = (
        client_for(staff_of(stroke_centre, "ed-called-off"))
        .get(f"{API}/handoffs/{sent['id']}")
        .json()
    )
    assert seen["state"] == "cancelled"
