"""GET /handoffs/{id}/fhir: the report as a FHIR R4 Bundle (design §21), validated by
fhir.resources (its R4B models: R4's structures for these resources)."""

import pytest
from fhir.resources.R4B.bundle import Bundle

from hospitals.handoffs import handoff_send
from tasks.models import TaskStatus
from tasks.services import task_change_status, task_record_milestone
from tests.factories import HospitalFactory, ParamedicFactory, put_on_task, staff_of
from tests.helpers import API, client_for

REPORT = {
    "acuity": "emergent",
    "age_years": 71,
    "sex": "male",
    "chief_complaint": "Crushing chest pain for 40 minutes",
    "stable": False,
    "bp_systolic": 92,
    "bp_diastolic": 58,
    "pulse": 118,
    "resp_rate": 24,
    "spo2": 91,
    "temperature_c": 36.4,
    "gcs": 14,
    "treatments": ["aspirin 300 mg", "12-lead ECG transmitted"],
}


@pytest.fixture
def handoff(db):
    crew = ParamedicFactory()
    task = put_on_task(crew, call_type="cardiac_arrest")
    task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=crew.user)
    hospital = HospitalFactory(code="CATH", name="Cath Lab Centre", capabilities=["stemi"])
    return handoff_send(
        task_id=task.pk, paramedic_id=crew.pk, hospital_id=hospital.pk, report=REPORT
    )


def by_type(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_is_valid_fhir_and_carries_the_report(handoff):
    staff = client_for(staff_of(handoff.hospital, "ed-cath"))
    response = staff.get(f"{API}/handoffs/{handoff.pk}/fhir")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    data = response.json()

    Bundle.model_validate(data)  # raises on anything FHIR does not allow

    assert data["type"] == "collection"
    (patient,) = by_type(data, "Patient")
    assert patient == {"resourceType": "Patient", "gender": "male"}  # no identity
    (encounter,) = by_type(data, "Encounter")
    assert (encounter["status"], encounter["class"]["code"]) == ("planned", "EMER")
    assert encounter["serviceProvider"]["display"] == "Cath Lab Centre"
    codes = {o["code"]["coding"][0]["code"]: o for o in by_type(data, "Observation")}
    assert set(codes) == {"30525-0", "85354-9", "8867-4", "9279-1", "59408-5", "8310-5", "9269-2"}
    assert codes["8867-4"]["valueQuantity"] == {
        "value": 118, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min",
    }  # fmt: skip
    assert [c["valueQuantity"]["value"] for c in codes["85354-9"]["component"]] == [92, 58]
    (condition,) = by_type(data, "Condition")
    assert condition["code"]["text"] == "Crushing chest pain for 40 minutes"
    assert condition["note"] == [{"text": "unstable"}]
    assert [p["code"]["text"] for p in by_type(data, "Procedure")] == REPORT["treatments"]
    # Every reference points inside the bundle.
    urls = {entry["fullUrl"] for entry in data["entry"]}
    assert encounter["subject"]["reference"] in urls
    assert all(o["encounter"]["reference"] in urls for o in codes.values())


def test_the_encounter_follows_the_handoff_and_no_vitals_is_fine(db):
    crew = ParamedicFactory()
    task = put_on_task(crew)
    task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=crew.user)
    bare = {key: REPORT[key] for key in ("acuity", "age_years", "sex", "chief_complaint")}
    handoff = handoff_send(
        task_id=task.pk,
        paramedic_id=crew.pk,
        hospital_id=HospitalFactory().pk,
        report={**bare, "stable": True},
    )
    task_record_milestone(task_id=task.pk, milestone="at_destination", actor=crew.user)
    data = client_for(crew.user).get(f"{API}/handoffs/{handoff.pk}/fhir").json()
    Bundle.model_validate(data)
    assert by_type(data, "Encounter")[0]["status"] == "arrived"
    assert [o["code"]["coding"][0]["code"] for o in by_type(data, "Observation")] == ["30525-0"]
    assert not by_type(data, "Procedure")
