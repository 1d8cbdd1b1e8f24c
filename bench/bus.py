"""Benchmark the event bus (design §11) against plain loops, in one run.

    .venv/bin/python bench/bus.py        # about 1-2 minutes, stops by itself

Publishing (this process, PostgreSQL `paramedic_bench_bus`, RabbitMQ on 127.0.0.1):

- baseline: a plain kombu loop publishing the same CloudEvents (built from the same
  rows) on one connection, waiting for each publisher confirm (kombu's
  `confirm_publish`); for reference, the same messages sent as one pipelined batch
  on a confirm channel, then all confirms awaited (the ceiling);
- relay: EVENTS pending bus rows (inserted untimed), `delivery.relay()` until none is
  due: claim, one confirmed batch, rows marked delivered;
- after commit: EVENTS transactions that each record one event; the web path
  publishes each right after its commit (no Celery job).

Each run publishes to an exchange of its own, bound to a queue of its own (so the
broker really routes and stores the persistent messages); both are deleted at the end.

Consuming (one process each, production settings, same database):

- EVENTS `POST /api/v1/tasks` calls, one at a time with keep-alive, to gunicorn with
  one sync worker, as the Patient Service would call it;
- the same number of `patient.emergency.requested` CloudEvents waiting in the queue,
  consumed by `manage.py consume_emergency_requests`, from its "consuming" line to
  the last task committed.

Both paths create tasks through the same service with the bus and Celery's broker
configured, so each task also publishes its `task.created` event and queues its
delivery job (the queue is deleted at the end; no worker runs).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    Gunicorn,
    ensure_database,
    postgres_banner,
    production_env,
    setup_django,
    terminate,
)

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_bus"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
EVENTS = 1000  # published per publishing measurement
REQUESTS = 300  # tasks per consuming measurement
WARM_UP = 20
RUN = uuid.uuid4().hex[:8]
OUT_EXCHANGE = f"paramedic.events.bench-{RUN}"
SUBSCRIBER_QUEUE = f"bench-subscriber-{RUN}"
IN_EXCHANGE = f"patient.events.bench-{RUN}"
IN_QUEUE = f"paramedic.emergency-requests.bench-{RUN}"
CELERY_QUEUE = f"paramedic-bench-bus-{RUN}"
SERVICE_USER = "bench-patient-service"
PASSWORD = "bench-password-123456"  # noqa: S105 - a throwaway local account
STARTED = time.monotonic()


def note(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def app_env() -> dict[str, str]:
    return {
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE,
        "EVENT_BUS_URL": BROKER_URL,
        "EVENT_EXCHANGE": OUT_EXCHANGE,
        "EVENT_INBOUND_EXCHANGE": IN_EXCHANGE,
        "EVENT_INBOUND_QUEUE": IN_QUEUE,
        "EVENT_INBOUND_DEAD_QUEUE": f"{IN_QUEUE}.dead",
        "EVENT_CONSUMER_USERNAME": SERVICE_USER,
        "PATIENT_SERVICE_URL": "",
        "NOTIFICATION_SERVICE_URL": "",
        "XRAY_SERVICE_URL": "",
    }


# --- publishing ----------------------------------------------------------------


def insert_bus_rows(count: int) -> list:
    from django.utils import timezone

    from integrations.models import Destination, OutboxEvent

    now = timezone.now()
    rows = [
        OutboxEvent(
            kind="task.assigned",
            destination=Destination.BUS,
            aggregate_type="task",
            aggregate_id=uuid.uuid4(),
            payload=payload(n),
            next_attempt_at=now,
        )
        for n in range(count)
    ]
    return OutboxEvent.objects.bulk_create(rows, batch_size=1000)


def payload(n: int) -> dict:
    """The size and shape of a real task event (tasks.events.task_event_payload)."""
    paramedic_id = str(uuid.uuid4())
    return {
        "task_id": str(uuid.uuid4()),
        "request_id": f"bench-req-{n}",
        "patient_id": f"patient-{n}",
        "consultation_id": "",
        "priority": "urgent",
        "status": "assigned",
        "from_status": "pending",
        "paramedic_id": paramedic_id,
        "paramedic": {"id": paramedic_id, "badge_number": f"BN-{n}", "phone": "+4930555123"},
        "address": f"Hauptstraße {n % 200 + 1}, 99084 Erfurt",
        "location": {"lat": 50.97 + (n % 100) / 1000, "lon": 11.03 + (n % 70) / 1000},
        "at": "2026-12-01T10:00:00+00:00",
        "milestone": None,
    }


def messages_for(rows) -> list:
    from cloudevents.core.bindings.rabbitmq import to_structured
    from cloudevents.core.formats.json import JSONFormat

    from integrations.bus import cloud_event

    return [(row, to_structured(cloud_event(row), JSONFormat())) for row in rows]


def kombu_loop(messages) -> float:
    """Plain kombu: one publish at a time, each waiting for its confirm; msgs/s."""
    from kombu import Connection, Exchange

    exchange = Exchange(OUT_EXCHANGE, type="topic", durable=True)
    with Connection(BROKER_URL, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer(exchange=exchange)
        send = lambda row, message: producer.publish(  # noqa: E731
            message.body,
            routing_key=row.kind,
            content_type=message.content_type,
            headers=message.headers or None,
            message_id=str(row.pk),
            delivery_mode=2,
        )
        for row, message in messages[:WARM_UP]:
            send(row, message)
        started = time.perf_counter()
        for row, message in messages[WARM_UP:]:
            send(row, message)
        return (len(messages) - WARM_UP) / (time.perf_counter() - started)


def kombu_batch(messages) -> float:
    """Reference ceiling: all messages pipelined on a confirm channel, then the confirms."""
    from kombu import Connection, Exchange

    acked: set[int] = set()
    with Connection(BROKER_URL) as connection:
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(
            lambda tag, multiple: acked.update(range(1, tag + 1)) if multiple else acked.add(tag)
        )
        producer = connection.Producer(channel, exchange=Exchange(OUT_EXCHANGE, type="topic"))
        started = time.perf_counter()
        for row, message in messages:
            producer.publish(
                message.body,
                routing_key=row.kind,
                content_type=message.content_type,
                message_id=str(row.pk),
                delivery_mode=2,
            )
        while len(acked) < len(messages):
            connection.drain_events(timeout=10)
        return len(messages) / (time.perf_counter() - started)


def relay_rate(count: int) -> tuple[float, int]:
    from integrations import delivery
    from integrations.models import Destination, OutboxEvent, OutboxState

    OutboxEvent.objects.all().delete()
    insert_bus_rows(WARM_UP)
    while delivery.relay():
        pass
    insert_bus_rows(count)
    started = time.perf_counter()
    while delivery.relay():
        pass
    elapsed = time.perf_counter() - started
    delivered = OutboxEvent.objects.filter(
        destination=Destination.BUS, state=OutboxState.DELIVERED
    ).count()
    return count / elapsed, delivered - WARM_UP


def after_commit_rate(count: int, *, bus: bool = True) -> tuple[float, int, float]:
    """`count` transactions recording one event each; published right after commit
    (with `bus` off: the same transactions and their Celery jobs, nothing for the bus)."""
    from django.db import transaction
    from django.test.utils import override_settings

    from integrations.models import Destination, OutboxEvent, OutboxState
    from integrations.outbox import record_event

    OutboxEvent.objects.all().delete()

    def one(n: int) -> None:
        with transaction.atomic():
            record_event(
                kind="task.assigned",
                aggregate_type="task",
                aggregate_id=uuid.uuid4(),
                payload=payload(n),
            )

    from integrations import publishing

    with override_settings(**({} if bus else {"EVENT_BUS_URL": ""})):
        for n in range(WARM_UP):
            one(n)
        publishing.flush()
        started = time.perf_counter()
        for n in range(count):
            one(n)
        elapsed = time.perf_counter() - started
        publishing.flush(timeout=60)
        drained = time.perf_counter() - started
    delivered = OutboxEvent.objects.filter(
        destination=Destination.BUS, state=OutboxState.DELIVERED
    ).count()
    return count / elapsed, delivered - WARM_UP, drained


def drain_subscriber() -> int:
    from kombu import Connection, Queue

    with Connection(BROKER_URL) as connection:
        return Queue(SUBSCRIBER_QUEUE)(connection.default_channel).purge() or 0


# --- consuming -------------------------------------------------------------------


def request_body(n: int, run: str) -> dict:
    return {
        "request_id": f"bench-{run}-{n}",
        "patient_id": f"patient-{n}",
        "priority": "urgent",
        "description": "Breathing difficulties",
        "address": f"Hauptstraße {n % 200 + 1}, 99084 Erfurt",
        "location": {"lat": 50.97 + (n % 100) / 1000, "lon": 11.03 + (n % 70) / 1000},
    }


def post_tasks_rate(port: int, count: int) -> tuple[float, int]:
    import httpx

    base = f"http://127.0.0.1:{port}/api/v1"
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.post(
            "/auth/token/", json={"username": SERVICE_USER, "password": PASSWORD}
        ).json()["access"]
        client.headers["Authorization"] = f"Bearer {token}"
        for n in range(WARM_UP):
            client.post("/tasks", json=request_body(n, "http-warm")).raise_for_status()
        created = 0
        started = time.perf_counter()
        for n in range(count):
            response = client.post("/tasks", json=request_body(n, "http"))
            created += response.status_code == 201
        return count / (time.perf_counter() - started), created


def publish_requests(count: int, run: str) -> None:
    from cloudevents.core.bindings.rabbitmq import to_structured
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent
    from kombu import Connection, Exchange, Queue

    exchange = Exchange(IN_EXCHANGE, type="topic", durable=True, auto_delete=False)
    queue = Queue(IN_QUEUE, exchange=exchange, routing_key="emergency.requested", durable=True)
    with Connection(BROKER_URL, transport_options={"confirm_publish": True}) as connection:
        queue(connection.default_channel).declare()  # as the consumer declares it
        producer = connection.Producer(exchange=exchange)
        for n in range(count):
            event = CloudEvent(
                attributes={
                    "id": str(uuid.uuid4()),
                    "source": "/patient-service",
                    "type": "patient.emergency.requested",
                    "datacontenttype": "application/json",
                },
                data=request_body(n, run),
            )
            message = to_structured(event, JSONFormat())
            producer.publish(
                message.body,
                routing_key="emergency.requested",
                content_type=message.content_type,
                message_id=event.get_id(),
                delivery_mode=2,
            )


def consume_rate(env: dict, count: int, log_dir: Path) -> tuple[float, int]:
    from tasks.models import EmergencyTask

    def created(run: str) -> int:
        return EmergencyTask.objects.filter(request_id__startswith=f"bench-{run}-").count()

    publish_requests(WARM_UP, "bus-warm")
    publish_requests(count, "bus")
    log = log_dir / "consumer.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [PYTHON, "manage.py", "consume_emergency_requests"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while f"starting: {IN_QUEUE}".encode() not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"consumer did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.01)
        while created("bus-warm") < WARM_UP:  # the first messages: imports, connections
            time.sleep(0.005)
        started = time.perf_counter()
        while (done := created("bus")) < count and time.monotonic() < deadline + 120:
            time.sleep(0.005)
        return count / (time.perf_counter() - started), done
    finally:
        process.send_signal(signal.SIGTERM)
        terminate(process, grace=15)


def delete_broker_objects() -> None:
    from kombu import Connection, Exchange, Queue

    with Connection(BROKER_URL) as connection:
        channel = connection.default_channel
        for name in (SUBSCRIBER_QUEUE, IN_QUEUE, f"{IN_QUEUE}.dead", CELERY_QUEUE):
            Queue(name)(channel).delete()
        for name in (OUT_EXCHANGE, IN_EXCHANGE):
            Exchange(name)(channel).delete()


# --- main ----------------------------------------------------------------------------


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    ensure_database(DATABASE_URL)
    env = {
        **app_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = None
    log_dir = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    try:
        setup_django(env, quiet=("integrations", "kombu", "amqp"))
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from kombu import Connection, Exchange, Queue

        from tasks.models import EmergencyTask

        print(postgres_banner())
        print(f"RabbitMQ at 127.0.0.1:5672//, exchanges {OUT_EXCHANGE} and {IN_EXCHANGE}")
        with Connection(BROKER_URL) as connection:
            exchange = Exchange(OUT_EXCHANGE, type="topic", durable=True, auto_delete=False)
            queue = Queue(SUBSCRIBER_QUEUE, exchange=exchange, routing_key="#", durable=True)
            queue(connection.default_channel).declare()

        note("publishing: plain kombu loop with confirms")
        from integrations.models import OutboxEvent

        OutboxEvent.objects.all().delete()
        messages = messages_for(insert_bus_rows(EVENTS + WARM_UP))
        loop = kombu_loop(messages)
        batch = kombu_batch(messages[WARM_UP:])
        note(f"kombu loop {loop:,.0f}/s, pipelined batch {batch:,.0f}/s; relay")
        relay, relayed = relay_rate(EVENTS)
        note(f"relay {relay:,.0f}/s; after commit")
        after, published, drained = after_commit_rate(EVENTS)
        without, _, _ = after_commit_rate(EVENTS, bus=False)
        note(f"after commit {after:,.0f}/s, the same without the bus {without:,.0f}/s")
        drain_subscriber()

        note("consuming: service account, gunicorn")
        user, _ = get_user_model().objects.get_or_create(username=SERVICE_USER)
        user.set_password(PASSWORD)
        user.is_active = True
        user.save()
        user.groups.add(Group.objects.get_or_create(name="services")[0])
        EmergencyTask.objects.filter(request_id__startswith="bench-").delete()
        serve_env = production_env(unset=(), **app_env(), LOG_LEVEL="WARNING")
        gunicorn = Gunicorn(
            serve_env, log_dir / "gunicorn.log", ["--workers", "1", "--timeout", "60"]
        ).start()
        posts, created = post_tasks_rate(gunicorn.port, REQUESTS)
        gunicorn.stop()
        gunicorn = None
        note(f"POST /tasks {posts:,.1f}/s; consumer")
        consumed, consumed_tasks = consume_rate(serve_env, REQUESTS, log_dir)
        note(f"consumer {consumed:,.1f}/s")

        print(f"{EVENTS:,} events per publishing measurement, {REQUESTS} tasks per consuming one,")
        print(
            f"{WARM_UP} warm-up not counted; 2 CPUs shared; load average {os.getloadavg()[0]:.1f}"
        )
        print()
        print("| path | per second | ratio | check |")
        print("|---|---:|---:|---|")
        print(f"| kombu loop, one publish per confirm (baseline) | {loop:,.0f} | 1.00x | |")
        print(f"| kombu, one pipelined batch (ceiling) | {batch:,.0f} | {batch / loop:.2f}x | |")
        print(
            f"| relay: claim, one confirmed batch, mark delivered | {relay:,.0f} | "
            f"{relay / loop:.2f}x | {relayed:,}/{EVENTS:,} delivered |"
        )
        print(
            f"| after commit: a transaction per event, published by the web path | "
            f"{after:,.0f} | {after / loop:.2f}x | {published:,}/{EVENTS:,} delivered, "
            f"the last {drained:.2f} s after the first commit |"
        )
        print(
            f"| the same transactions without the bus (their HTTP rows and Celery jobs) | "
            f"{without:,.0f} | {without / loop:.2f}x | |"
        )
        print(f"| POST /tasks, 1 gunicorn sync worker (baseline) | {posts:,.1f} | 1.00x | "
              f"{created}/{REQUESTS} created |")  # fmt: skip
        print(
            f"| consumer: emergency requests from the queue | {consumed:,.1f} | "
            f"{consumed / posts:.2f}x | {consumed_tasks}/{REQUESTS} created |"
        )
        print()
        print(f"goals: relay >= 0.5x of the kombu loop: {relay / loop:.2f}x; "
              f"consumer >= 1x of POST /tasks: {consumed / posts:.2f}x")  # fmt: skip
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        try:
            delete_broker_objects()
        except Exception as exc:  # the report matters more than the clean-up
            note(f"could not delete the bench's exchanges and queues: {exc}")


if __name__ == "__main__":
    main()
