"""Benchmark outbox delivery through a real Celery worker (design §8).

    .venv/bin/python bench/delivery.py             # the benchmark, 1.5-3 minutes
    .venv/bin/python bench/delivery.py --profile   # in-process cProfile of the worker path

Everything runs on 127.0.0.1: PostgreSQL (database `paramedic_bench_delivery`,
created if missing; its outbox table is truncated between modes, so it is not
configurable and never DATABASE_URL), RabbitMQ (amqp://guest:guest@127.0.0.1//,
a queue of its own per run) and an HTTP sink that answers 202 `{}` to
POST /notifications and counts requests and Idempotency-Keys.

The sink is a ThreadingHTTPServer in a subprocess (this file with --sink), not a
thread here: its request parsing is Python, and in a thread it would share this
process's GIL with the baseline loop it is measured against.

It measures, for EVENTS `task.reminder` notifications:

- baseline: the same HTTP calls made in a loop from this process through the
  application's client (NotificationServiceClient(...).notify, a new client per
  call, as the outbox does through tasks.handlers), and, for reference, through one shared
  httpx.Client with keep-alive;
- (a) the after-commit path: EVENTS pending rows, each handed to
  `publishing.hand_on` as the commit hook does (the process's background
  batcher queues `integrations.deliver_events` jobs of up to 20 rows), time from
  the first hand-off until the last row is delivered (its delivered_at);
- (b) the relay, the beat path: EVENTS pending rows, `integrations.relay_outbox`
  jobs (each claims up to OUTBOX_RELAY_BATCH rows) until all are delivered;

both through ONE worker (`--pool=solo`), and prints events/s, the ratio to the
baseline, and per event: HTTP requests seen by the sink, PostgreSQL sessions
opened and transactions run (from pg_stat_database). Stops by itself.
"""

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

from common import ROOT, ensure_database, postgres_banner, setup_django, terminate

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_delivery"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
EVENTS = 300  # per measurement; each app-client call costs tens of ms (see README)
WARM_UP = 20  # uncounted calls / events before each measurement
MODE_TIMEOUT = 60.0  # seconds a worker mode may take before it is reported as partial
POLL_SECONDS = 0.1
TOKEN = "bench-integration-token"  # noqa: S105 - sent to the local sink only
PROFILE_EVENTS = 100
STARTED = time.monotonic()


def note(message: str) -> None:
    """Progress, on stderr, so that stdout is just the report."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- The HTTP sink (runs in its own process) ---------------------------------


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    # Headers and body in one buffered write, sent at once: otherwise Nagle and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    lock = threading.Lock()
    posts = 0
    without_key = 0
    keys: list[str] = []

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cls = type(self)
        if self.path == "/notifications":
            key = self.headers.get("Idempotency-Key")
            with cls.lock:
                cls.posts += 1
                if key:
                    cls.keys.append(key)
                else:
                    cls.without_key += 1
            self._reply(202, b"{}")
        elif self.path == "/reset":
            with cls.lock:
                cls.posts, cls.without_key, cls.keys = 0, 0, []
            self._reply(200, b"{}")
        else:
            self._reply(404, b"{}")

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            stats = {"posts": cls.posts, "without_key": cls.without_key, "keys": list(cls.keys)}
        self._reply(200, json.dumps(stats).encode())

    def log_message(self, format, *args) -> None:
        pass


def run_sink() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SinkHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.5)


class Sink:
    """The sink subprocess, seen from here."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, cwd=ROOT
        )
        port = self.process.stdout.readline().strip()
        if not port:
            raise RuntimeError("the HTTP sink did not start")
        self.url = f"http://127.0.0.1:{int(port)}"

    def reset(self) -> None:
        urlopen(Request(f"{self.url}/reset", data=b"", method="POST"), timeout=5).read()  # noqa: S310

    def stats(self) -> dict:
        with urlopen(f"{self.url}/stats", timeout=10) as response:  # noqa: S310 - local sink
            return json.loads(response.read())

    def stop(self) -> None:
        terminate(self.process, grace=5)


# --- Database and Django -----------------------------------------------------


def django_env(queue: str, sink_url: str = "") -> dict[str, str]:
    """The environment of this process and of the worker: same settings, same database."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        # DEBUG would keep every query in memory; production runs without it.
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "NOTIFICATION_SERVICE_URL": sink_url,
        "PATIENT_SERVICE_URL": "",
        "XRAY_SERVICE_URL": "",
        "INTEGRATION_TOKEN": TOKEN,
    }


def truncate_outbox() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE integrations_outboxevent")


def reminder_payload(n: int) -> dict:
    """What tasks.events.task_event_payload plus a reminder kind would produce."""
    from django.utils import timezone

    paramedic_id = str(uuid.uuid4())
    return {
        "task_id": None,  # filled in with the aggregate id
        "request_id": f"bench-req-{n}",
        "patient_id": f"patient-{n}",
        "consultation_id": f"consult-{n}",
        "priority": "urgent",
        "status": "assigned",
        "from_status": None,
        "paramedic_id": paramedic_id,
        "paramedic": {"id": paramedic_id, "badge_number": f"BN-{n}", "phone": "+4930555123"},
        "address": f"Hauptstraße {n % 200 + 1}, 99084 Erfurt",
        "location": {"lat": 50.9787 + (n % 100) / 1000, "lon": 11.0328 + (n % 70) / 1000},
        "at": timezone.now().isoformat(),
        "reminder": "not_started",
    }


def insert_events(count: int) -> list[str]:
    """`count` due notification rows, as task_send_due_reminders would record them."""
    from django.utils import timezone

    from integrations.models import Destination, OutboxEvent

    now = timezone.now()
    rows = []
    for n in range(count):
        task_id = uuid.uuid4()
        payload = reminder_payload(n)
        payload["task_id"] = str(task_id)
        rows.append(
            OutboxEvent(
                kind="task.reminder",
                destination=Destination.NOTIFICATION,
                aggregate_type="task",
                aggregate_id=task_id,
                payload=payload,
                next_attempt_at=now,
            )
        )
    return [str(e.pk) for e in OutboxEvent.objects.bulk_create(rows, batch_size=1000)]


def pg_counters() -> tuple[int, int]:
    """(sessions opened, transactions) on this database so far, per pg_stat_database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        return cursor.fetchone()


# --- Baseline: the HTTP calls alone ------------------------------------------


def calls_per_second(call, count: int) -> float:
    """call(n) WARM_UP times uncounted, then `count` times timed; calls per second."""
    for n in range(WARM_UP):
        call(n)
    started = time.perf_counter()
    for n in range(count):
        call(n)
    return count / (time.perf_counter() - started)


def http_loop_app_client(sink: Sink, count: int) -> float:
    """events/s through the application's client: a new client (and connection) per call."""
    from integrations.clients.notification import NotificationServiceClient

    def call(n: int) -> None:
        key = str(uuid.uuid4())
        body = {"event_id": key, "kind": "task.reminder", **reminder_payload(n)}
        NotificationServiceClient(base_url=sink.url).notify(body, idempotency_key=key)

    return calls_per_second(call, count)


def http_loop_shared_client(sink: Sink, count: int) -> float:
    """events/s through one httpx.Client kept open (keep-alive): the reference ceiling."""
    import httpx

    from integrations.clients.base import TIMEOUT

    headers = {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sink.url, timeout=TIMEOUT, headers=headers) as client:

        def call(n: int) -> None:
            key = str(uuid.uuid4())
            body = {"event_id": key, "kind": "task.reminder", **reminder_payload(n)}
            response = client.post("/notifications", json=body, headers={"Idempotency-Key": key})
            response.raise_for_status()
            response.json()

        return calls_per_second(call, count)


# --- The worker --------------------------------------------------------------


class Worker:
    """One real Celery worker (solo pool) on this run's own queue."""

    def __init__(self, env: dict[str, str], queue: str, log_dir: Path) -> None:
        self.log = log_dir / "worker.log"
        self.handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery_app",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log.read_text()[-3000:]}")
            if b"ready." in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        terminate(self.process, grace=15)  # SIGTERM: warm shutdown
        self.handle.close()


def delivered_count() -> tuple[int, int]:
    """(delivered, dead) rows, in one query."""
    from django.db.models import Count, Q

    from integrations.models import OutboxEvent, OutboxState

    counts = OutboxEvent.objects.aggregate(
        delivered=Count("pk", filter=Q(state=OutboxState.DELIVERED)),
        dead=Count("pk", filter=Q(state=OutboxState.DEAD)),
    )
    return counts["delivered"], counts["dead"]


def wait_all_delivered(total: int, deadline: float, on_stall=None) -> tuple[int, int, int]:
    """Poll until `total` rows are delivered (or dead), or the deadline; returns counts, polls."""
    polls, last, last_change = 0, -1, time.monotonic()
    while True:
        delivered, dead = delivered_count()
        polls += 1
        if polls % 50 == 0:
            note(f"  {delivered:,} delivered, {dead} dead")
        if delivered + dead >= total or time.monotonic() > deadline:
            return delivered, dead, polls
        if delivered != last:
            last, last_change = delivered, time.monotonic()
        elif on_stall and time.monotonic() - last_change > 3:
            on_stall(total - delivered - dead)
            last_change = time.monotonic()
        time.sleep(POLL_SECONDS)


def warm_up_worker() -> None:
    """A few events through the worker first: imports, connections, first-job costs."""
    from integrations import publishing

    truncate_outbox()
    ids = insert_events(WARM_UP)
    for event_id in ids:
        publishing.hand_on(event_id)
    delivered, dead, _ = wait_all_delivered(WARM_UP, time.monotonic() + 30)
    if delivered != WARM_UP:
        raise RuntimeError(f"warm-up: {delivered} of {WARM_UP} delivered, {dead} dead")


def jobs_received(worker: "Worker") -> int:
    """Delivery jobs the worker has received so far (its log says so for each)."""
    lines = worker.log.read_text(errors="replace").splitlines()
    return sum("integrations.deliver_events[" in line and "received" in line for line in lines)


def run_mode(mode: str, sink: Sink, count: int, worker: "Worker") -> dict:
    """Insert `count` due rows, hand them to the worker as `mode` says, time until delivered."""
    from django.conf import settings
    from django.db.models import Max
    from django.utils import timezone

    from integrations import publishing
    from integrations.jobs import relay_outbox
    from integrations.models import OutboxEvent

    truncate_outbox()
    ids = insert_events(count)
    sink.reset()
    time.sleep(1.5)  # let pg_stat_database catch up with the insert before the baseline
    sessions0, xacts0 = pg_counters()
    batch = settings.OUTBOX_RELAY_BATCH
    published = 0

    def publish_relays(remaining: int) -> None:
        nonlocal published
        for _ in range(math.ceil(remaining / batch)):
            relay_outbox.apply_async()
            published += 1

    started_at = timezone.now()
    started = time.perf_counter()
    if mode == "after_commit":
        jobs_before = jobs_received(worker)
        for event_id in ids:
            publishing.hand_on(event_id)
        publishing.delivery_jobs.flush()
        on_stall = None
    else:
        publish_relays(count)
        on_stall = publish_relays
    publish_s = time.perf_counter() - started
    delivered, dead, polls = wait_all_delivered(
        count, time.monotonic() + MODE_TIMEOUT, on_stall=on_stall
    )
    if mode == "after_commit":
        published = jobs_received(worker) - jobs_before
    last = OutboxEvent.objects.aggregate(last=Max("delivered_at"))["last"]
    elapsed = (last - started_at).total_seconds() if last else time.perf_counter() - started
    complete = delivered + dead >= count
    if not complete:
        elapsed = time.perf_counter() - started

    time.sleep(1.5)  # backends report their counters when idle or gone
    sessions1, xacts1 = pg_counters()
    stats = sink.stats()
    # Our own polls and counter reads are transactions on this database too.
    own_xacts = polls + 2 + 1 + 2  # polls, pg_counters x2, the Max() query
    return {
        "mode": mode,
        "count": count,
        "delivered": delivered,
        "dead": dead,
        "complete": complete,
        "elapsed": elapsed,
        "rate": delivered / elapsed if elapsed else 0.0,
        "jobs": published,
        "publish_s": publish_s,
        "posts": stats["posts"],
        "distinct_keys": len(set(stats["keys"])),
        "keys_match": set(stats["keys"]) == set(ids),
        "sessions": sessions1 - sessions0,
        "xacts": xacts1 - xacts0 - own_xacts,
    }


def delete_queue(queue: str) -> None:
    """Remove this run's (now empty) queue from RabbitMQ; nothing else."""
    from config.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue, if_empty=True)
    except Exception as exc:  # leaving an empty queue behind is harmless
        print(f"(could not delete queue {queue}: {exc.__class__.__name__})")


# --- Report ------------------------------------------------------------------


def print_report(baseline: float, shared: float, results: list[dict], batch: int) -> None:
    print()
    print(
        "| path | events/s | vs. HTTP loop | HTTP req/event | PG sessions/event | PG xacts/event |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| HTTP loop, app client (new client per call) | {baseline:,.0f} | 1.00x | 1.00 | - | - |"
    )
    print(
        f"| HTTP loop, one shared httpx.Client (reference) | {shared:,.0f} "
        f"| {shared / baseline:.2f}x | 1.00 | - | - |"
    )
    labels = {
        "after_commit": "worker (a): the after-commit path, batched jobs",
        "relay": f"worker (b): relay_outbox jobs, batch {batch}",
    }
    for r in results:
        n = max(r["delivered"], 1)
        partial = "" if r["complete"] else " (partial: timed out)"
        print(
            f"| {labels[r['mode']]}{partial} | {r['rate']:,.0f} | {r['rate'] / baseline:.2f}x "
            f"| {r['posts'] / n:.2f} | {r['sessions'] / n:.2f} | {r['xacts'] / n:.2f} |"
        )
    print()
    for r in results:
        if not r["complete"]:
            check = "not compared (timed out)"
        else:
            check = "ok" if r["keys_match"] and r["posts"] == r["count"] else "MISMATCH"
        print(
            f"{r['mode']}: {r['delivered']:,}/{r['count']:,} delivered ({r['dead']} dead) in "
            f"{r['elapsed']:.2f} s, {r['jobs']:,} jobs, handed on in {r['publish_s']:.2f} s; "
            f"sink saw {r['posts']:,} POSTs, {r['distinct_keys']:,} distinct Idempotency-Keys "
            f"= row ids: {check}"
        )


def main() -> None:
    # A SIGTERM (e.g. from `timeout`) still stops the worker and the sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    queue = f"paramedic-bench-delivery-{uuid.uuid4().hex[:10]}"
    ensure_database(DATABASE_URL)
    sink = Sink()
    worker = None
    try:
        env = django_env(queue, sink.url)
        # The bench's own calls are not logged (the worker logs as configured).
        setup_django(env, quiet=("httpx",))
        from django.conf import settings

        print(postgres_banner())
        print(f"RabbitMQ at {BROKER_URL.split('@')[1]}, queue {queue}; HTTP sink at {sink.url}")
        print(
            f"{EVENTS:,} task.reminder notifications per measurement, {WARM_UP} warm-up not counted"
        )

        note("HTTP loop through the app client")
        baseline = http_loop_app_client(sink, EVENTS)
        note(f"{baseline:,.1f}/s; HTTP loop through one shared httpx.Client")
        shared = http_loop_shared_client(sink, EVENTS)
        note(f"{shared:,.1f}/s; starting the worker")

        log_dir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
        worker = Worker(env, queue, log_dir)
        worker.wait_ready()
        note(f"worker pid {worker.process.pid} ready (solo pool), log {worker.log}")
        warm_up_worker()
        results = []
        for mode in ("after_commit", "relay"):
            note(f"mode {mode}")
            results.append(run_mode(mode, sink, EVENTS, worker))
            note(f"{results[-1]['rate']:,.1f}/s")
        print_report(baseline, shared, results, settings.OUTBOX_RELAY_BATCH)
    finally:
        if worker is not None:
            worker.stop()
        sink.stop()
    if worker is not None:
        delete_queue(queue)


# --- In-process profile of the worker path (--profile) -----------------------


def profile() -> None:
    """cProfile delivery.deliver and delivery.relay in this process, and count their queries.

    Like the worker, each job starts with its database connection closed: Celery's
    Django fixup closes it before and after every job (celery/fixups/django.py).
    """
    import cProfile
    import pstats

    sink = Sink()
    try:
        setup_django(django_env("unused", sink.url), quiet=("httpx",))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from integrations import delivery

        def as_jobs(ids, close_between: bool):
            for event_id in ids:
                if close_between:
                    connection.close()
                delivery.deliver(event_id)

        truncate_outbox()
        ids = insert_events(20)
        with CaptureQueriesContext(connection) as captured:
            delivery.deliver(ids[0])
        print(f"queries per deliver_event job: {len(captured.captured_queries)}")
        for q in captured.captured_queries:
            print("   ", q["sql"][:150])
        with CaptureQueriesContext(connection) as captured:
            handled = delivery.relay(batch_size=10)
        print(f"queries per relay job of {handled} rows: {len(captured.captured_queries)}")

        for label, close_between in (
            ("connection closed around each job, as in the worker", True),
            ("connection kept", False),
        ):
            truncate_outbox()
            ids = insert_events(PROFILE_EVENTS)
            connection.close()
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            as_jobs(ids, close_between)
            profiler.disable()
            elapsed = time.perf_counter() - started
            print(
                f"\n== delivery.deliver x {PROFILE_EVENTS}, {label}: "
                f"{PROFILE_EVENTS / elapsed:,.1f} events/s under cProfile"
            )
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(22)

        truncate_outbox()
        insert_events(PROFILE_EVENTS)
        connection.close()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        while delivery.relay():
            connection.close()
        profiler.disable()
        elapsed = time.perf_counter() - started
        rate = PROFILE_EVENTS / elapsed
        print(f"\n== delivery.relay until empty: {rate:,.1f} events/s under cProfile")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(22)
    finally:
        sink.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="in-process cProfile instead")
    args = parser.parse_args()
    if args.sink:
        run_sink()
    elif args.profile:
        profile()
    else:
        main()
