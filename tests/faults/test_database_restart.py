"""Faults: PostgreSQL restarts in the middle of a burst of requests (design §5, §6, §8).

What must not be lost: an emergency request (POST /api/v1/tasks). A caller that
got 201/200 has a task in the database exactly once, with its "received"
history row and its `task.created` outbox row. A caller that got a 503 (or
nothing) may retry with the same request_id, and the retry yields that one
task, never a second one or half of one. Meanwhile the service answers
clearly (JSON with a `code`, 503 while the database is down, never a 500 or
an HTML page, never a hang) and recovers on its own once the database is back.

The suite's database is never touched: each module run starts a throwaway
PostgreSQL cluster (tests/faults/pg.py), migrates and seeds a database there,
and serves it with real gunicorn processes (production settings), as deployed.
gunicorn comes from requirements/prod.txt; where only the dev requirements are
installed, Django's threaded runserver (same app, same settings) stands in, so
the test still runs (FAULTS_APP_SERVER=gunicorn|runserver chooses explicitly).
"""

import importlib.util
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.faults.pg import ThrowawayPostgres, pg_bin_dir
from tests.helpers import STRICT_SERVICES
from tests.processes import free_port

pytestmark = [pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
DBNAME = "paramedic_fault"
CLIENT_TIMEOUT = 10.0  # seconds; a request without an answer by then "hangs"
BEFORE_FAULT = 2.5  # seconds of normal traffic before the restart
AFTER_FAULT = 5.0  # seconds of traffic after the database is back
RECOVER_WITHIN = 3.0  # every request started this long after the restart succeeds
POSTING_THREADS = 4
READING_THREADS = 2
DB_DOWN_CODES = {"service_unavailable", "database_unavailable"}


class UnclearOutageAnswer(AssertionError):
    """The service answered the outage with something other than a JSON 503."""


def _require(what: str, reason: str | None) -> None:
    if reason is None:
        return
    if "postgres" in STRICT_SERVICES:
        pytest.fail(f"STRICT_SERVICES requires postgres fault tests, but {what}: {reason}")
    pytest.skip(f"{what}: {reason}")


# --- the deployed stack: throwaway cluster, migrated and seeded ------------------
SEED = r"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from paramedics.models import Paramedic

User = get_user_model()

def user(name, group=None, **extra):
    u = User.objects.create_user(username=name, password=None, **extra)
    if group:
        u.groups.add(Group.objects.get_or_create(name=group)[0])
    return u

service = user("patient-service", "services")
supervisor = user("sup", "supervisors", is_staff=True)
medics = [
    Paramedic.objects.create(
        user=user(f"B-{i}"), badge_number=f"B-{i}", first_name="Field", last_name=f"Medic{i}",
        email=f"b-{i}@ems.example.org", phone="+4930123456", certification_level="paramedic",
        status="available", last_lat=52.5 + i / 100, last_lon=13.4,
        last_location_at=timezone.now(),
    )
    for i in range(3)
]
token = lambda u: str(RefreshToken.for_user(u).access_token)
print("SEED=" + json.dumps({
    "service": token(service),
    "supervisor": token(supervisor),
    "paramedics": [{"id": str(m.pk), "token": token(m.user)} for m in medics],
}))
"""


@dataclass
class Stack:
    pg: ThrowawayPostgres
    env: dict
    tokens: dict
    tmp: Path

    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}"
        return result.stdout


@pytest.fixture(scope="module", autouse=True)
def _quiet_http_client_logs():
    """httpx logs every request at INFO; thousands of lines would bury a failure."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _require("PostgreSQL server binaries", None if pg_bin_dir() else "initdb/pg_ctl not found")
    tmp = tmp_path_factory.mktemp("db-fault")
    pg = ThrowawayPostgres()
    try:
        pg.start()
        url = pg.create_database(DBNAME)
        env = {
            key: value
            for key, value in os.environ.items()
            # Eager Celery, filesystem storage, events only logged: the database is the fault.
            if key
            not in {
                "CELERY_BROKER_URL",
                "S3_BUCKET",
                "PATIENT_SERVICE_URL",
                "NOTIFICATION_SERVICE_URL",
                "XRAY_SERVICE_URL",
                "CACHE_URL",
            }
        }
        env.update(
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            DJANGO_SECURE_SSL_REDIRECT="false",
            THROTTLE_AUTH_RATE="100000/min",
            MEDIA_ROOT=str(tmp / "media"),
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
        )
        stack = Stack(pg=pg, env=env, tokens={}, tmp=tmp)
        stack.manage("migrate", "--noinput", "-v0")
        out = stack.manage("shell", "-c", SEED)
        seed_line = next(line for line in out.splitlines() if line.startswith("SEED="))
        stack.tokens = json.loads(seed_line.removeprefix("SEED="))
        yield stack
    finally:
        pg.cleanup()


def app_server_kind() -> str:
    chosen = os.environ.get("FAULTS_APP_SERVER")
    if chosen:
        return chosen
    return "gunicorn" if importlib.util.find_spec("gunicorn") else "runserver"


class AppServer:
    """The app over HTTP in its own process(es), stopped by PID.

    gunicorn as deployed (2 workers x 4 threads, Dockerfile), or Django's
    threaded runserver when gunicorn is not installed.
    """

    def __init__(self, stack: Stack, name: str):
        self.kind = app_server_kind()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = stack.tmp / f"{self.kind}-{name}.log"
        if self.kind == "gunicorn":
            args = [
                "-m", "gunicorn", "config.wsgi:application",
                "-b", f"127.0.0.1:{self.port}", "-w", "2", "-k", "gthread", "--threads", "4",
                "--timeout", "30", "--graceful-timeout", "5",
            ]  # fmt: skip
        elif self.kind == "runserver":
            args = ["manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        else:
            raise ValueError(f"FAULTS_APP_SERVER must be gunicorn or runserver, not {self.kind}")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=stack.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} not ready:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


# --- the burst ---------------------------------------------------------------------
@dataclass
class Outcome:
    thread: int
    method: str
    path: str
    request_id: str | None
    started: float
    ended: float
    status: int | None = None  # None: no answer (timeout, connection refused/reset)
    content_type: str = ""
    body: object = None  # parsed JSON, or None
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        what = self.status if self.status is not None else self.error
        return f"{self.method} {self.path} [{self.request_id or ''}] -> {what} {self.text[:160]!r}"


@dataclass
class Burst:
    mode: str
    base_url: str
    outcomes: list[Outcome] = field(default_factory=list)
    fault_started: float = 0.0
    fault_ended: float = 0.0

    def by_request_id(self) -> dict[str, list[Outcome]]:
        grouped = defaultdict(list)
        for outcome in self.outcomes:
            if outcome.request_id:
                grouped[outcome.request_id].append(outcome)
        return grouped

    def summary(self) -> str:
        def window(o):
            if o.ended < self.fault_started:
                return "before"
            return "during" if o.started <= self.fault_ended else "after"

        counts = Counter((window(o), o.status) for o in self.outcomes)
        return ", ".join(f"{w}/{s}: {n}" for (w, s), n in sorted(counts.items(), key=str))


def _send(client: httpx.Client, thread: int, method: str, path: str, body=None, rid=None):
    started = time.monotonic()
    outcome = Outcome(thread, method, path, rid, started, started)
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        outcome.error = f"{exc.__class__.__name__}: {exc}"
    else:
        outcome.status = response.status_code
        outcome.content_type = response.headers.get("content-type", "")
        outcome.text = response.text[:500]
        try:
            outcome.body = response.json()
        except ValueError:
            outcome.body = None
    outcome.ended = time.monotonic()
    return outcome


def task_body(request_id: str) -> dict:
    return {
        "request_id": request_id,
        "patient_id": f"patient-{request_id}",
        "consultation_id": f"consult-{request_id}",
        "priority": "urgent",
        "description": "Fall at home during a database restart",
        "address": "1 Example Street",
        "location": {"lat": 52.52, "lon": 13.405},
    }


def run_burst(stack: Stack, base_url: str, mode: str, fault) -> Burst:
    """Client threads stream requests; `fault()` runs after BEFORE_FAULT seconds."""
    burst = Burst(mode=mode, base_url=base_url)
    lock = threading.Lock()
    stop = threading.Event()
    tokens = stack.tokens
    medic = tokens["paramedics"][0]

    def record(outcome: Outcome) -> Outcome:
        with lock:
            burst.outcomes.append(outcome)
        return outcome

    def client(token: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            timeout=CLIENT_TIMEOUT,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def poster(i: int) -> None:
        """The Patient Service. Even threads retry a failed request at once, with the
        same request_id; odd ones move on and leave it for later (retried after the burst).
        """
        n, retry = 0, None
        with client(tokens["service"]) as http:
            while not stop.is_set():
                rid = retry
                if rid is None:
                    n += 1
                    rid = f"{mode}-{i}-{n}"
                posted = record(_send(http, i, "POST", "/api/v1/tasks", task_body(rid), rid))
                retry = rid if not posted.ok and i % 2 == 0 else None
                if not posted.ok:
                    time.sleep(0.05)  # a caller backs off a little
                if n % 2 == 0:
                    record(_send(http, i, "GET", "/api/v1/tasks?page_size=5"))

    def reader(i: int) -> None:
        """A supervisor's console and a paramedic's device, polling."""
        paths = [
            (tokens["supervisor"], "/api/v1/tasks?page_size=5&status=pending"),
            (tokens["supervisor"], "/api/v1/paramedics?page_size=5"),
            (medic["token"], f"/api/v1/paramedics/{medic['id']}"),
            (medic["token"], f"/api/v1/paramedics/{medic['id']}/tasks"),
        ]
        clients = {token: client(token) for token, _ in paths}
        try:
            k = i
            while not stop.is_set():
                token, path = paths[k % len(paths)]
                record(_send(clients[token], i, "GET", path))
                k += 1
        finally:
            for http in clients.values():
                http.close()

    threads = [
        threading.Thread(target=poster, args=(i,), daemon=True) for i in range(POSTING_THREADS)
    ] + [
        threading.Thread(target=reader, args=(POSTING_THREADS + i,), daemon=True)
        for i in range(READING_THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE_FAULT)
        burst.fault_started = time.monotonic()
        fault()
        burst.fault_ended = time.monotonic()
        time.sleep(AFTER_FAULT)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)
    assert not any(t.is_alive() for t in threads), "a client thread is stuck"
    return burst


# --- what the database holds ---------------------------------------------------------
def db_state(stack: Stack, request_ids) -> dict[str, dict]:
    """Per request_id: the task rows, its "received" history rows and task.created outbox rows."""
    with stack.pg.connect(DBNAME) as conn:
        rows = conn.execute(
            """
            SELECT t.request_id, t.id::text, t.status,
              (SELECT count(*) FROM tasks_taskhistory h
                WHERE h.task_id = t.id AND h.from_status = '' AND h.to_status = 'pending'),
              (SELECT count(*) FROM integrations_outboxevent o
                WHERE o.aggregate_id = t.id AND o.kind = 'task.created')
            FROM tasks_emergencytask t WHERE t.request_id = ANY(%s)
            """,
            (list(request_ids),),
        ).fetchall()
    state: dict[str, dict] = {}
    for request_id, task_id, status, history, outbox in rows:
        entry = state.setdefault(request_id, {"ids": [], "complete": True})
        entry["ids"].append(task_id)
        entry["complete"] &= status == "pending" and history == 1 and outbox == 1
    return state


def orphans(stack: Stack) -> dict[str, int]:
    """Halves of writes anywhere in the database: rows whose partner is missing."""
    with stack.pg.connect(DBNAME) as conn:
        return {
            "tasks without their received history": conn.execute(
                """SELECT count(*) FROM tasks_emergencytask t WHERE NOT EXISTS (
                     SELECT 1 FROM tasks_taskhistory h WHERE h.task_id = t.id
                     AND h.to_status = 'pending' AND h.from_status = '')"""
            ).fetchone()[0],
            "tasks without their task.created outbox row": conn.execute(
                """SELECT count(*) FROM tasks_emergencytask t WHERE NOT EXISTS (
                     SELECT 1 FROM integrations_outboxevent o
                     WHERE o.aggregate_id = t.id AND o.kind = 'task.created')"""
            ).fetchone()[0],
            "task.created outbox rows without their task": conn.execute(
                """SELECT count(*) FROM integrations_outboxevent o
                   WHERE o.kind = 'task.created' AND NOT EXISTS (
                     SELECT 1 FROM tasks_emergencytask t WHERE t.id = o.aggregate_id)"""
            ).fetchone()[0],
        }


# --- the faults --------------------------------------------------------------------
def restart_fast(pg: ThrowawayPostgres) -> None:
    """`pg_ctl restart -m fast`: sessions are terminated, the server is back in ~0.3 s."""
    pg.restart(mode="fast")


def crash_and_come_back(pg: ThrowawayPostgres) -> None:
    """`pg_ctl stop -m immediate` (a crash: no checkpoint), 2 s down, then start + recovery."""
    pg.stop(mode="immediate")
    time.sleep(2.0)
    pg.start()


FAULTS = {"restart-fast": restart_fast, "crash-immediate-2s-down": crash_and_come_back}


@pytest.mark.parametrize("mode", list(FAULTS))
def test_database_restart_mid_burst_loses_no_request(stack, mode):
    """Must not be lost: any emergency request, answered or not.

    - every request_id answered 201/200 is one complete task (task + "received"
      history + task.created outbox row) with the id the caller was given;
    - every request_id answered otherwise is absent or complete, never half-written,
      and the caller's retry now yields exactly one task (201 if absent, else 200);
    - the service recovers on its own, without restarting the app server;
    - the outage itself is answered clearly: JSON with a `code`, 503, never 500/HTML/hang.
    """
    server = AppServer(stack, mode)
    try:
        server.wait_ready()
        burst = run_burst(stack, server.base_url, mode, lambda: FAULTS[mode](stack.pg))
        context = f"[{mode}, {server.kind}] {burst.summary()}\n"
        sys.stdout.write(f"\n{context}")

        # 1. No hang: every request got an answer within the client timeout.
        unanswered = [o.describe() for o in burst.outcomes if o.status is None]
        assert not unanswered, context + "\n".join(unanswered[:10])

        # 2. Traffic was healthy before the fault, and recovers without help: the same
        #    server process, and requests succeed again soon after the database is back.
        early = [o for o in burst.outcomes if o.ended < burst.fault_started]
        early_failures = [o.describe() for o in early if not o.ok]
        assert early, context + "no traffic before the fault"
        assert not early_failures, context + "\n".join(early_failures[:10])
        assert server.process.poll() is None, f"{server.kind} died:\n{server.log_tail()}"
        late = [o for o in burst.outcomes if o.started > burst.fault_ended + RECOVER_WITHIN]
        assert len(late) >= 10, context + "too little traffic after the restart to judge recovery"
        still_failing = [o.describe() for o in late if not o.ok]
        assert not still_failing, (
            context
            + f"{len(still_failing)} requests failed more than {RECOVER_WITHIN}s after the "
            + "database was back:\n"
            + "\n".join(still_failing[:10])
        )
        recovered_after = min(
            (o.started - burst.fault_ended for o in burst.outcomes
             if o.ok and o.started > burst.fault_ended),
            default=None,
        )  # fmt: skip
        assert recovered_after is not None, context + "no success after the restart"
        sys.stdout.write(f"first success {recovered_after:.2f}s after the database was back\n")

        # 3. No lost or half-written request, before the caller retries.
        grouped = burst.by_request_id()
        state = db_state(stack, grouped)
        problems = []
        for rid, attempts in grouped.items():
            entry = state.get(rid)
            answered = [o for o in attempts if o.ok]
            created = [o for o in attempts if o.status == 201]
            if len(created) > 1:
                problems.append(f"{rid}: created {len(created)} times")
            if entry is None:
                if answered:
                    problems.append(f"{rid}: answered {answered[0].status} but not in the DB")
                continue
            if len(entry["ids"]) != 1:
                problems.append(f"{rid}: {len(entry['ids'])} tasks in the DB")
            if not entry["complete"]:
                problems.append(f"{rid}: half-written (task without history/outbox row)")
            for outcome in answered:
                returned = (outcome.body or {}).get("id")
                if returned not in entry["ids"]:
                    problems.append(f"{rid}: answered id {returned}, DB has {entry['ids']}")
        assert not problems, context + "\n".join(problems[:20])
        halves = orphans(stack)
        assert not any(halves.values()), context + str(halves)

        # 4. The caller retries every request that failed: exactly one task each, the
        #    one already committed (200, same id) or a new one if nothing was (201).
        failed = [rid for rid, attempts in grouped.items() if not all(o.ok for o in attempts)]
        unresolved = [rid for rid in failed if not any(o.ok for o in grouped[rid])]
        sys.stdout.write(
            f"{len(grouped)} request_ids, {len(failed)} with a failed attempt, "
            f"{len(unresolved)} without any success by the end of the burst, of which "
            f"{sum(1 for r in unresolved if r in state)} were committed anyway\n"
        )
        assert failed or mode == "restart-fast", context + "the outage failed no request"
        with httpx.Client(
            base_url=server.base_url,
            timeout=CLIENT_TIMEOUT,
            headers={"Authorization": f"Bearer {stack.tokens['service']}"},
        ) as http:
            for rid in failed:
                existed = rid in state
                first = http.post("/api/v1/tasks", json=task_body(rid))
                again = http.post("/api/v1/tasks", json=task_body(rid))
                assert first.status_code == (200 if existed else 201), (rid, first.text)
                assert again.status_code == 200, (rid, again.text)
                assert first.json()["id"] == again.json()["id"]
                if existed:
                    assert [first.json()["id"]] == state[rid]["ids"], rid
        final = db_state(stack, grouped)
        assert set(final) == set(grouped), context + "a retried request is still missing"
        assert all(len(e["ids"]) == 1 and e["complete"] for e in final.values()), context
        halves = orphans(stack)
        assert not any(halves.values()), context + str(halves)

        # 5. The outage was answered clearly: JSON with a code; 503, never 500 or HTML.
        failures = [o for o in burst.outcomes if not o.ok]
        if not failures:
            pytest.skip(f"{context}the restart fell between requests: no outage answer to judge")
        unclear = [
            o.describe()
            for o in failures
            if o.status != 503
            or not o.content_type.startswith("application/json")
            or not isinstance(o.body, dict)
            or o.body.get("code") not in DB_DOWN_CODES
            or not o.body.get("detail")
        ]
        if unclear:
            statuses = Counter((o.status, (o.body or {}).get("code")) for o in failures)
            raise UnclearOutageAnswer(
                f"{context}{len(unclear)} of {len(failures)} failed requests were not a JSON 503 "
                f"with code in {sorted(DB_DOWN_CODES)}: {dict(statuses)}\n" + "\n".join(unclear[:8])
            )
    except Exception:  # a failure (not a skip): show what the server and database said
        sys.stderr.write(f"--- {server.kind} log ({mode}) ---\n{server.log_tail()}\n")
        sys.stderr.write(f"--- postgres log ---\n{stack.pg.log_tail()}\n")
        raise
    finally:
        server.stop()


@pytest.fixture
def bare_cluster():
    _require("PostgreSQL server binaries", None if pg_bin_dir() else "initdb/pg_ctl not found")
    with ThrowawayPostgres() as pg:
        yield pg


def test_throwaway_cluster_restarts_and_keeps_committed_rows(bare_cluster):
    """Must not be lost: rows committed before a restart (fast) or a crash (immediate).

    Guards the harness itself: the cluster's settings (fsync=off, synchronous_commit
    on) must not make a crash eat commits, or the test above would blame the app.
    """
    pg = bare_cluster
    with pg.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE harness_probe (n int)")
        conn.execute("INSERT INTO harness_probe VALUES (1)")
    pg.restart(mode="fast")
    for mode in ("fast", "immediate"):
        pg.stop(mode=mode)
        assert not pg.is_running()
        with pytest.raises(psycopg.OperationalError):
            pg.connect()
        pg.start()
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM harness_probe").fetchone()[0] == 1
    with pytest.raises(ValueError, match="mode must be one of"):
        pg.stop(mode="kill-9")
    assert pg.is_running()

    data_dir = pg.dir
    pg.cleanup()
    assert not data_dir.exists()
