"""docs/asyncapi.yaml (design §11): the committed catalogue is the code's, and what the
service really publishes fits it. CI also validates the file with AsyncAPI's own
parser (`make asyncapi-check`).
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from cloudevents.core.bindings.rabbitmq import to_structured
from cloudevents.core.formats.json import JSONFormat
from django.utils import timezone
from jsonschema import Draft7Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from hospitals.handoffs import handoff_acknowledge, handoff_offload, handoff_send
from integrations import catalogue, registry
from integrations.bus import TYPE_PREFIX, cloud_event
from integrations.management.commands.asyncapi import render
from integrations.models import OutboxEvent
from paramedics.services import roster_release_ended_shifts
from tasks.inbound import EVENT_TYPE
from tasks.models import EmergencyTask, TaskStatus
from tasks.services import task_change_status, task_record_milestone, task_send_due_reminders
from tests.factories import HospitalFactory, TaskFactory, shift_for
from tests.helpers import client_for, new_task_body, upload
from tests.xrays.samples import dicom_bytes, image_bytes

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_URI = "urn:paramedic:asyncapi"


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())


def validator(document: dict, message: str) -> Draft7Validator:
    """A validator for one message's payload, resolving refs inside the document."""
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    schema = {"$ref": f"{DOCUMENT_URI}#/components/messages/{message}/payload"}
    return Draft7Validator(
        schema,
        registry=Registry().with_resource(DOCUMENT_URI, resource),
        format_checker=FormatChecker(),
    )


def as_published(row: OutboxEvent) -> dict:
    """The CloudEvent exactly as the bus carries it (the same code as the publisher)."""
    return json.loads(to_structured(cloud_event(row), JSONFormat()).body)


def test_the_committed_document_is_the_one_the_code_describes(document, db):
    assert yaml.safe_load(render()) == document, (
        "docs/asyncapi.yaml differs from the catalogue: run `make schema`, review the diff "
        "and record it in docs/api-changelog.md"
    )


def test_every_event_kind_the_apps_record_is_in_the_catalogue(document):
    described = {entry.kind for entry in catalogue.published()}
    assert set(registry.kinds()) == described
    assert {f"publish.{kind}" for kind in described} <= set(document["operations"])
    assert f"consume.{EVENT_TYPE}" in document["operations"]


def test_what_a_tasks_life_uploads_and_a_shift_publish_fits_the_document(
    document, settings, supervisor, paramedic
):
    """Every kind, as the flows really produce it: strict schemas (no extra or missing
    keys), so a payload change without a document change fails here."""
    settings.TASK_START_REMINDER_MINUTES = 0
    task_id = (
        client_for(supervisor).post("/api/v1/tasks", new_task_body(), format="json").json()["id"]
    )
    client_for(supervisor).post(
        f"/api/v1/tasks/{task_id}/assign", {"paramedic": str(paramedic.id)}, format="json"
    )
    assert task_send_due_reminders(now=timezone.now() + timedelta(minutes=1)) == 1
    task_record_milestone(task_id=task_id, milestone="acknowledged", actor=paramedic.user)
    task_change_status(task_id=task_id, to_status=TaskStatus.IN_PROGRESS, actor=paramedic.user)
    task = EmergencyTask.objects.get(pk=task_id)
    medic = client_for(paramedic.user)
    assert upload(medic, paramedic, task, image_bytes("PNG")).status_code == 201
    assert upload(medic, paramedic, task, dicom_bytes(), name="scan.dcm").status_code == 201
    # The hospital (design §21): a report, acknowledged, the arrival; the offload
    # completes the task.
    report = {"acuity": "urgent", "age_years": 40, "sex": "male", "chief_complaint": "Fall",
              "stable": True}  # fmt: skip
    handoff = handoff_send(
        task_id=task_id, paramedic_id=paramedic.pk, hospital_id=HospitalFactory().pk, report=report
    )
    handoff_acknowledge(handoff_id=handoff.pk, actor=supervisor)
    task_record_milestone(task_id=task_id, milestone="at_destination", actor=paramedic.user)
    handoff_offload(handoff_id=handoff.pk, actor=supervisor)
    # The roster (design §14): the paramedic's shift ends, it goes off duty.
    now = timezone.now()
    shift_for(paramedic, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(minutes=1))
    assert roster_release_ended_shifts(now=now + timedelta(minutes=2)) == 1

    seen = set()
    for row in OutboxEvent.objects.all():
        message = TYPE_PREFIX + row.kind
        event = as_published(row)
        validator(document, message).validate(event)
        seen.add(row.kind)
    assert seen == {entry.kind for entry in catalogue.published()}


@pytest.mark.parametrize(
    "change",
    [
        lambda data: data.update(patient_details={"name": "x"}),
        lambda data: data.pop("status"),
        lambda data: data.update(status="lost"),
        lambda data: data.update(task_id="not-a-uuid"),
    ],
    ids=["extra-key", "missing-key", "unknown-status", "bad-id"],
)
def test_a_payload_that_drifted_from_the_document_fails(document, db, change):
    task = TaskFactory()
    event = as_published(OutboxEvent.objects.get(aggregate_id=task.pk, kind="task.created"))
    change(event["data"])
    with pytest.raises(ValidationError):
        validator(document, "paramedic.task.created").validate(event)


def request_event(data: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": "req-1",
        "source": "/patient-service",
        "type": EVENT_TYPE,
        "data": data,
    }


def test_emergency_requests_are_described_by_the_post_tasks_body(document):
    check = validator(document, EVENT_TYPE)
    check.validate(request_event(new_task_body()))
    schema = document["components"]["schemas"]["TaskCreateRequest"]
    # `priority` may be left to the call type's plan (design §18).
    assert set(schema["required"]) == {"request_id", "patient_id", "location"}
    assert {"priority", "call_type"} <= set(schema["properties"])
    planned = {key: value for key, value in new_task_body().items() if key != "priority"}
    check.validate(request_event({**planned, "call_type": "stroke"}))
    for wrong in (
        {**new_task_body(), "priority": "whenever"},
        {key: value for key, value in new_task_body().items() if key != "location"},
        {**new_task_body(), "request_id": "bad id"},
        {**new_task_body(), "call_type": 5},
    ):
        with pytest.raises(ValidationError):
            check.validate(request_event(wrong))
    with pytest.raises(ValidationError):
        check.validate({**request_event(new_task_body()), "type": "patient.discharged"})
