"""Emergency requests from the event bus (design §11).

The handler's rules run on any database. The consumer itself runs as deployed
(`manage.py consume_emergency_requests`, a separate process) on a real RabbitMQ
and PostgreSQL; each test has exchange and queue names of its own.
"""

import json
import signal
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from integrations.consumer import Rejected
from integrations.models import InboxMessage, InboxOutcome
from tasks.inbound import EVENT_TYPE, emergency_request_received
from tasks.models import EmergencyTask
from tests.factories import TaskFactory, UserFactory
from tests.integrations.bus import (
    PatientService,
    body_of,
    cloud_event,
    request_body,
    tasks_for,
    wait_for,
)
from tests.integrations.workers import ConsumerProcess, database_url
from tests.processes import TcpProxy

# --- the handler (any database) ---------------------------------------------------


@pytest.fixture
def consumer_account(settings, service_user):
    settings.EVENT_CONSUMER_USERNAME = service_user.username
    return service_user


def test_a_request_becomes_a_task_created_by_the_service_account(consumer_account):
    outcome = emergency_request_received(cloud_event(request_body("bus-req-1")))

    assert outcome == InboxOutcome.CREATED
    task = EmergencyTask.objects.get(request_id="bus-req-1")
    assert (task.created_by, task.status, task.priority) == (
        consumer_account,
        "pending",
        "critical",
    )
    assert (task.lat, task.lon, task.description) == (52.52, 13.405, "Fall from a ladder")
    assert list(task.history.values_list("note", flat=True)) == ["received"]


def test_a_request_with_a_call_type_gets_its_plan(consumer_account):
    body = request_body("bus-req-plan", call_type="stroke")
    del body["priority"]
    emergency_request_received(cloud_event(body))
    task = EmergencyTask.objects.get(request_id="bus-req-plan")
    assert (task.call_type_id, task.priority, task.target_minutes) == ("stroke", "urgent", 15)


def test_the_same_request_again_is_the_same_task(consumer_account):
    event = cloud_event(request_body("bus-req-2"))
    assert emergency_request_received(event) == InboxOutcome.CREATED
    assert emergency_request_received(event) == InboxOutcome.DUPLICATE
    # A new event (new id) for the same request: still one task, as with POST /tasks.
    assert emergency_request_received(cloud_event(request_body("bus-req-2"))) == "duplicate"
    assert EmergencyTask.objects.filter(request_id="bus-req-2").count() == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (cloud_event(request_body("r"), type_="patient.emergency.cancelled"), "is not"),
        (cloud_event(["not", "an", "object"]), "not a JSON object"),
        (cloud_event("text"), "not a JSON object"),
        (cloud_event(None), "not a JSON object"),
        (cloud_event(request_body("r", priority="whenever")), "priority"),
        (cloud_event(request_body("r", location={"lat": 91, "lon": 0})), "lat"),
        (cloud_event(request_body("bad id with spaces")), "request_id"),
        (cloud_event(request_body("r", patient_id=None)), "patient_id"),
        (cloud_event({"request_id": "r"}), "location"),
        (cloud_event(request_body("r", call_type="heartburn")), "No call type"),
    ],
    ids=[
        "wrong-type",
        "list-data",
        "text-data",
        "no-data",
        "bad-priority",
        "bad-location",
        "bad-request-id",
        "null-patient",
        "missing-fields",
        "unknown-call-type",
    ],
)
def test_what_can_never_succeed_is_rejected_with_its_reason(consumer_account, event, reason):
    with pytest.raises(Rejected, match=reason):
        emergency_request_received(event)
    assert not EmergencyTask.objects.exists()


def test_another_callers_request_id_is_rejected_and_not_revealed(consumer_account):
    TaskFactory(request_id="someone-elses", patient_id="patient-1")
    with pytest.raises(Rejected, match="duplicate_request_id"):
        emergency_request_received(cloud_event(request_body("someone-elses")))
    assert EmergencyTask.objects.get(request_id="someone-elses").patient_id == "patient-1"


@pytest.mark.parametrize("account", ["missing", "inactive", "not-a-service"])
def test_without_a_usable_service_account_nothing_is_created(settings, db, account):
    if account == "inactive":
        UserFactory(username="svc", is_active=False, groups=["services"])
    elif account == "not-a-service":
        UserFactory(username="svc")
    settings.EVENT_CONSUMER_USERNAME = "svc"
    with pytest.raises(Rejected, match="no active service account"):
        emergency_request_received(cloud_event(request_body("bus-req-3")))
    assert not EmergencyTask.objects.exists()


# --- the consumer process on RabbitMQ and PostgreSQL ---------------------------------


@pytest.fixture
def consumer(tmp_path, service_user):
    process = ConsumerProcess(tmp_path, username=service_user.username)
    yield process
    process.stop()


@pytest.fixture
def patient_service(consumer):
    publisher = PatientService(consumer)
    yield publisher
    publisher.close()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_requests_become_tasks_and_what_cannot_goes_to_the_dead_letters(
    consumer, patient_service, service_user
):
    consumer.start()
    first = patient_service.request(request_body("live-1"))
    patient_service.request(request_body("live-1"), event_id=first)  # redelivered
    patient_service.send(b'{"specversion": "1.0", "id": ', message_id="truncated")
    patient_service.send(json.dumps({"id": "x", "type": EVENT_TYPE}).encode(), message_id="no-ce")
    patient_service.request(request_body("live-2"), type_="patient.discharged")
    patient_service.request(request_body("live-3", priority="soon"))
    patient_service.send(b"[" * 100_000 + b"]" * 100_000, message_id="deep")
    patient_service.request(request_body("live-4"))  # after all that, still consuming

    wait_for(lambda: tasks_for("live-4"), what="the last request's task")
    dead = patient_service.dead_letters(5)

    assert tasks_for("live-1") == 1 and tasks_for("live-4") == 1
    assert not EmergencyTask.objects.filter(request_id__in=["live-2", "live-3"]).exists()
    assert EmergencyTask.objects.get(request_id="live-1").created_by == service_user
    reasons = [m.headers["x-dead-reason"] for m in dead]
    assert len(reasons) == 5, reasons
    assert reasons[0].startswith("not JSON") and reasons[4].startswith("not JSON")
    assert reasons[1].startswith("not a CloudEvent 1.0")
    assert "patient.discharged" in reasons[2] and "priority" in reasons[3]
    assert {m.headers["x-original-routing-key"] for m in dead} == {"emergency.requested"}
    assert body_of(dead[0]) == b'{"specversion": "1.0", "id": '  # as it came, for support
    assert patient_service.depth(consumer.queue) == 0
    outcomes = dict(InboxMessage.objects.values_list("message_id", "outcome"))
    assert outcomes[first] == InboxOutcome.DUPLICATE  # created, then the repeat
    assert outcomes["truncated"] == outcomes["deep"] == InboxOutcome.DEAD
    assert consumer.process.poll() is None


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_request_arriving_while_the_database_is_down_waits_and_is_not_lost(
    tmp_path, service_user
):
    parts = urlsplit(database_url())
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    through_proxy = parts._replace(
        netloc=f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}"
    )
    consumer = ConsumerProcess(
        tmp_path, username=service_user.username, database=through_proxy.geturl()
    )
    patient_service = PatientService(consumer)
    try:
        consumer.start()
        proxy.cut()
        patient_service.request(request_body("while-down"))
        consumer.wait_for_log("database unavailable")
        time.sleep(1.5)  # a retry or two, still down
        assert tasks_for("while-down") == 0
        assert patient_service.depth(consumer.queue) == 0  # held by the consumer, unacked

        proxy.restore()
        wait_for(lambda: tasks_for("while-down"), timeout=40, what="the task after the outage")
        assert tasks_for("while-down") == 1
        assert patient_service.dead_letters(1, timeout=0.5) == []
        assert consumer.process.poll() is None
    finally:
        consumer.stop()
        patient_service.close()
        proxy.close()


def lock_tasks_table():
    """Another session holding the tasks table: the consumer's INSERT waits on it."""
    holder = psycopg.connect(database_url().replace("postgres://", "postgresql://", 1))
    holder.execute(f"LOCK TABLE {EmergencyTask._meta.db_table} IN EXCLUSIVE MODE")
    return holder


def consumer_waits_on_the_lock(holder) -> bool:
    row = holder.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return row[0] > 0


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_consumer_killed_mid_message_leaves_it_for_the_next_one(consumer, patient_service):
    consumer.start()
    holder = lock_tasks_table()
    try:
        patient_service.request(request_body("killed-mid-message"))
        wait_for(lambda: consumer_waits_on_the_lock(holder), what="the consumer's INSERT")
        consumer.signal(signal.SIGKILL)
        consumer.process.wait(timeout=10)
    finally:
        holder.close()
    assert tasks_for("killed-mid-message") == 0  # its transaction died with it

    consumer.start()  # RabbitMQ redelivers the unacknowledged message
    wait_for(lambda: tasks_for("killed-mid-message"), what="the redelivered request's task")
    time.sleep(0.5)
    assert tasks_for("killed-mid-message") == 1
    assert patient_service.depth(consumer.queue) == 0


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_message_in_hand_then_stops(consumer, patient_service):
    consumer.start()
    holder = lock_tasks_table()
    try:
        patient_service.request(request_body("in-hand"))
        patient_service.request(request_body("next-in-line"))
        wait_for(lambda: consumer_waits_on_the_lock(holder), what="the consumer's INSERT")
        consumer.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert consumer.process.poll() is None  # still working on it
    finally:
        holder.close()

    assert consumer.process.wait(timeout=20) == 0
    assert tasks_for("in-hand") == 1
    assert tasks_for("next-in-line") == 0  # left in the queue for the next consumer
    assert patient_service.depth(consumer.queue) == 1
    assert "stopped after 1 message(s)" in consumer.output()
