"""A handoff's events on a real RabbitMQ (design §11, §21): the publisher works from
its own database connection, so this commits for real and runs on PostgreSQL (see
tests/integrations/test_bus.py)."""

import json
import uuid

import pytest

from integrations import delivery, publishing
from integrations.models import Destination, OutboxEvent, OutboxState
from tests.factories import HospitalFactory, ParamedicFactory, put_on_task, staff_of
from tests.helpers import API, client_for
from tests.integrations.bus import Subscriber
from tests.integrations.workers import broker_url

pytestmark = [pytest.mark.rabbitmq]

KINDS = ["handoff.sent", "handoff.acknowledged", "handoff.arrived", "handoff.offloaded"]


@pytest.fixture
def bus(settings):
    settings.EVENT_BUS_URL = broker_url()
    settings.EVENT_EXCHANGE = f"paramedic.events.test-{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(broker_url(), settings.EVENT_EXCHANGE)
    yield subscriber
    subscriber.close()
    delivery.bus.publisher().close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_handoffs_life_arrives_on_the_bus(bus):
    crew = ParamedicFactory()
    task = put_on_task(crew, call_type="stroke")
    hospital = HospitalFactory(capabilities=["stroke"])
    medic, staff = client_for(crew.user), client_for(staff_of(hospital, "ed-bus"))
    medic.post(f"{API}/paramedics/{crew.pk}/tasks/{task.pk}", {"status": "in_progress"})
    body = {"hospital": str(hospital.pk), "acuity": "emergent", "age_years": 80,
            "sex": "female", "chief_complaint": "Aphasia", "stable": False}  # fmt: skip
    handoff_id = medic.post(f"{API}/tasks/{task.pk}/handoff", body, format="json").json()["id"]
    staff.post(f"{API}/handoffs/{handoff_id}/acknowledge")
    medic.post(
        f"{API}/paramedics/{crew.pk}/tasks/{task.pk}/milestones", {"milestone": "at_destination"}
    )
    assert staff.post(f"{API}/handoffs/{handoff_id}/offload").json()["state"] == "offloaded"
    assert publishing.flush()

    rows = list(
        OutboxEvent.objects.filter(
            destination=Destination.BUS, kind__startswith="handoff."
        ).order_by("created_at")
    )
    assert [row.kind for row in rows] == KINDS
    assert {row.state for row in rows} == {OutboxState.DELIVERED}
    events = {}
    for message in bus.messages(OutboxEvent.objects.filter(destination=Destination.BUS).count()):
        event = json.loads(message.body)
        if event["type"].startswith("paramedic.handoff."):
            events[message.delivery_info["routing_key"]] = event
    assert list(events) == KINDS
    assert {event["subject"] for event in events.values()} == {handoff_id}
    assert [event["data"]["state"] for event in events.values()] == [
        "sent", "acknowledged", "arrived", "offloaded",
    ]  # fmt: skip
    assert "Aphasia" not in json.dumps(list(events.values()))  # no clinical content
