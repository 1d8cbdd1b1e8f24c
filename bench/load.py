"""Load benchmark: gunicorn + PostgreSQL under realistic traffic (issue "Load").

    .venv/bin/python bench/load.py [--clients 8] [--seconds 10] [--mixed-seconds 20]

Self-contained, 127.0.0.1 only, stops by itself in about three minutes:

- waits (up to --wait-max seconds) until the 1-minute load average is at most
  --max-load, since other benchmarks may share the machine;
- creates the dedicated database `paramedic_bench_load` if it is missing (it
  truncates the users, paramedics, tasks, X-rays and outbox tables: never point
  it at a database you care about), migrates it and seeds it through the
  services: 200 paramedics, 2,000 tasks with their history (most completed,
  a few cancelled or pending, 50 active), a supervisor and an intake service;
  JWTs are minted by the same `manage.py seed_load` run;
- starts gunicorn (production settings, `-w 2 -k gthread --threads 4`, see
  GUNICORN_ARGS) on a free port and drives it with --clients closed-loop
  clients, one process each, speaking keep-alive HTTP/1.1 over raw sockets
  (a lean client, so the load generator takes as little CPU as possible from
  the 2 cores it shares with the server);
- phases of a fixed duration at the same concurrency: /healthz, each endpoint
  on its own, the realistic mix, /healthz again. An endpoint's ratio is its
  req/s in its own phase over the mean /healthz req/s of the two baseline
  phases. The status phase runs the field cycle in lockstep (supervisor
  creates and assigns a task, the paramedic starts and completes it), so its
  four endpoints share that phase's time;
- per phase it also reads the CPU the gunicorn workers and the PostgreSQL
  backends used (/proc/<pid>/stat), per request: a figure the client's own
  CPU use does not distort;
- finally, in-process with the Django test client (calling
  close_old_connections() first, as gunicorn's request_started does): the
  queries each endpoint runs for small and large results
  (CaptureQueriesContext), CPU and wall time per call, and a cProfile of
  GET /paramedics/{id}/tasks (the goal) and GET /tasks?page_size=50 (the
  slowest read), broken down by stage.

Errors (non-2xx or a broken connection) must be 0; the exit status is 1 if not.
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from common import (
    ROOT,
    Gunicorn,
    admin_url,
    arm_deadline,
    children,
    database_name,
    ensure_database,
    manage,
    production_env,
    run_script,
    tagged,
    terminate,
)

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_load"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUE = f"paramedic-bench-load-{uuid.uuid4().hex[:8]}"  # the run's own, deleted at the end
DEADLINE_S = 10 * 60  # hard stop, whatever happens (waiting for a quiet machine included)
MANAGE_TIMEOUT = 480  # seconds a manage.py run may take

PARAMEDICS = 200
TASKS = 2000
ACTIVE = 50  # tasks assigned or in progress at the start
PENDING = 20  # waiting for dispatch
CANCELLED_SHARE = 0.05

# The production stack (Dockerfile): gunicorn with uvicorn workers serving the ASGI
# app, one worker per core (a request is mostly Python, so a worker is bound by the
# GIL to about one core); each request's sync view runs in a thread of its own, so
# one request's PostgreSQL round trips overlap another's Python. Connections stay
# alive, as behind a proxy.
GUNICORN_ARGS = ["-w", "2", "-k", "config.asgi_worker.Worker", "--keep-alive", "10"]

POLL = "GET /paramedics/{id}/tasks"
POLL_304 = "GET /paramedics/{id}/tasks (If-None-Match: 304)"
STATUS = "POST /paramedics/{id}/tasks/{task_id}"
SUP_TASKS = "GET /tasks?page_size=50"
SUP_PARAMEDICS = "GET /paramedics?status=available"
CREATE = "POST /tasks"
ASSIGN = "POST /tasks/{id}/assign"
UPLOAD = "POST /paramedics/{id}/xray"
HEALTHZ = "GET /healthz"

# The realistic mix: weights of the actions a client picks at random. A status
# action is the next step of one of its paramedics' cycle: create + assign (two
# supervisor requests), start, or complete.
MIX = {"poll": 70, "status": 12, "sup_tasks": 8, "sup_paramedics": 8, "upload": 2}


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg") as handle:
        one, five, fifteen = handle.read().split()[:3]
    return float(one), float(five), float(fifteen)


def wait_quiet(max_load: float, wait_max: float) -> str:
    """Wait until the 1-minute load average is at most max_load; describe what happened."""
    started = time.monotonic()
    while True:
        load = loadavg()
        waited = time.monotonic() - started
        if load[0] <= max_load:
            return (
                f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after {waited:.0f} s wait"
            )
        if waited >= wait_max:
            return (
                f"load average still {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after "
                f"{waited:.0f} s wait (> {max_load}): figures are disturbed by other work"
            )
        print(f"  waiting for a quiet machine: load {load[0]:.2f} > {max_load}", flush=True)
        time.sleep(10)


# --- database, environment, manage.py --------------------------------------


def make_env(tmp: Path, url: str) -> dict[str, str]:
    env = production_env(
        # Anything that would switch on an outside service stays off.
        (
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "S3_BUCKET",
            "PATIENT_SERVICE_URL",
            "NOTIFICATION_SERVICE_URL",
            "XRAY_SERVICE_URL",
            "DJANGO_DEBUG",
            "DB_CONN_MAX_AGE",
            "JWT_ACCESS_MINUTES",
        ),
        DATABASE_URL=url,
        # The production shape: jobs go to RabbitMQ, a worker delivers them.
        CELERY_BROKER_URL=BROKER_URL,
        CELERY_TASK_DEFAULT_QUEUE=QUEUE,
        THROTTLE_AUTH_RATE="100000/min",
        WHITENOISE_USE_FINDERS="true",
        MEDIA_ROOT=str(tmp / "media"),
        TMPDIR=str(tmp / "spool"),  # Django spools uploads with tempfile
    )
    (tmp / "media").mkdir()
    (tmp / "spool").mkdir()
    return env


# --- CPU accounting ----------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """CPU seconds of the gunicorn workers and of this database's PostgreSQL backends."""

    def __init__(self, master: int, url: str):
        import psycopg

        self.master = master
        self.db = database_name(url)
        self.conn = psycopg.connect(admin_url(url), autocommit=True)

    def _backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.db]
        ).fetchall()
        return [pid for (pid,) in rows]

    def sample(self) -> dict[str, dict[int, float]]:
        app = {pid: cpu_seconds(pid) for pid in children(self.master)}
        db = {pid: cpu_seconds(pid) for pid in self._backends()}
        return {
            "app": {k: v for k, v in app.items() if v is not None},
            "db": {k: v for k, v in db.items() if v is not None},
        }

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        # A backend that appeared during the phase counts from zero.
        return {
            kind: sum(after[kind][pid] - before[kind].get(pid, 0.0) for pid in after[kind])
            for kind in ("app", "db")
        }

    def close(self) -> None:
        self.conn.close()


# --- the HTTP client ---------------------------------------------------------


class Closed(Exception):
    """The server closed the connection before sending a byte of the response."""


class Http:
    """Minimal keep-alive HTTP/1.1 client: pre-encoded requests, Content-Length bodies."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.reconnects = 0
        self.headers: dict[bytes, bytes] = {}

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def request(self, raw: bytes) -> tuple[int, bytes]:
        # gunicorn closes a connection idle past --keep-alive; the request was not
        # read then, so it is sent again once on a fresh connection.
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
                self.reconnects += attempt
            try:
                self.sock.sendall(raw)
                return self._response()
            except (Closed, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self, started: bool) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            if started:
                raise ConnectionError("connection closed mid-response")
            raise Closed()
        self.buf += chunk

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._recv(bool(self.buf))
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = self._chunked()
        else:
            length = int(headers.get(b"content-length", b"0"))
            while len(self.buf) < length:
                self._recv(True)
            body, self.buf = self.buf[:length], self.buf[length:]
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        self.headers = headers
        return status, body

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._recv(True)
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                self._recv(True)
            body += self.buf[:size]
            self.buf = self.buf[size + 2 :]
            if size == 0:
                return body


def build(
    method: str, path: str, port: int, token: str | None = None, body=None, ctype=None, etag=None
):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if etag:
        lines.append(f"If-None-Match: {etag}")
    payload = b""
    if body is not None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines.append(f"Content-Type: {ctype or 'application/json'}")
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def png_multipart(task_id: str) -> tuple[bytes, str]:
    """A small random grey PNG (unique, so never deduplicated) as a multipart body."""
    import io

    from PIL import Image

    image = io.BytesIO()
    Image.frombytes("L", (48, 48), os.urandom(48 * 48)).save(image, "PNG")
    boundary = "load-" + uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="task"\r\n\r\n'
            f"{task_id}\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="xray.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# --- a client process --------------------------------------------------------


class Client:
    """One closed-loop client; owns a disjoint set of paramedics (their cycle state)."""

    def __init__(self, port: int, index: int, supervisor: str, owned: list[dict]):
        self.port = port
        self.index = index
        self.supervisor = supervisor
        self.owned = owned
        self.rng = random.Random(1000 + index)
        self.http = Http(port)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.statuses: Counter = Counter()  # counted answers per status code
        self.samples: list[str] = []
        self.end_at = 0.0
        self.serial = 0
        self.turn = 0

    def call(self, endpoint: str, raw: bytes) -> bytes | None:
        started = time.monotonic()
        try:
            status, body = self.http.request(raw)
        except OSError as exc:
            status, body = 0, repr(exc).encode()
            self.http.close()
        done = time.monotonic()
        if done <= self.end_at:  # after the end of the phase: done, but not counted
            self.latencies[endpoint].append(done - started)
            self.statuses[status] += 1
        if not (200 <= status < 300 or status == 304):
            self.errors[endpoint] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{endpoint}: HTTP {status} {body[:200]!r}")
            return None
        return body

    def next_paramedic(self) -> dict:
        self.turn += 1
        return self.owned[self.turn % len(self.owned)]

    # actions ---------------------------------------------------------------

    def healthz(self) -> None:
        self.call(HEALTHZ, build("GET", "/healthz", self.port))

    def poll(self) -> None:
        p = self.next_paramedic()
        path = f"/api/v1/paramedics/{p['id']}/tasks?status=assigned&status=in_progress"
        self.call(POLL, build("GET", path, self.port, p["token"]))

    def poll_304(self) -> None:
        """The steady state of a device between changes: its copy is current."""
        p = self.next_paramedic()
        path = f"/api/v1/paramedics/{p['id']}/tasks?status=assigned&status=in_progress"
        if "etag" not in p:  # the first poll of each (a 200) is not counted
            end_at, self.end_at = self.end_at, 0.0
            self.call(POLL_304, build("GET", path, self.port, p["token"]))
            self.end_at = end_at
            p["etag"] = self.http.headers.get(b"etag", b"").decode()
        self.call(POLL_304, build("GET", path, self.port, p["token"], etag=p["etag"]))

    def sup_tasks(self) -> None:
        self.call(SUP_TASKS, build("GET", "/api/v1/tasks?page_size=50", self.port, self.supervisor))

    def sup_paramedics(self) -> None:
        path = "/api/v1/paramedics?status=available"
        self.call(SUP_PARAMEDICS, build("GET", path, self.port, self.supervisor))

    def status(self) -> None:
        """The next step of one paramedic's cycle: dispatch, start or complete."""
        p = self.next_paramedic()
        if p["active"] is None:
            self.serial += 1
            request = {
                "request_id": f"load-{self.index}-{self.serial}-{uuid.uuid4().hex[:12]}",
                "patient_id": f"load-patient-{self.serial}",
                "priority": self.rng.choice(["critical", "urgent", "routine"]),
                "address": "1 Load Street",
                "location": {"lat": 52.52, "lon": 13.40},
            }
            body = self.call(
                CREATE, build("POST", "/api/v1/tasks", self.port, self.supervisor, request)
            )
            if body is None:
                return
            task_id = json.loads(body)["id"]
            body = self.call(
                ASSIGN,
                build(
                    "POST",
                    f"/api/v1/tasks/{task_id}/assign",
                    self.port,
                    self.supervisor,
                    {"paramedic": p["id"]},
                ),
            )
            if body is not None:
                p["active"] = [task_id, "assigned"]
            return
        task_id, current = p["active"]
        target = "in_progress" if current == "assigned" else "completed"
        path = f"/api/v1/paramedics/{p['id']}/tasks/{task_id}"
        body = self.call(STATUS, build("POST", path, self.port, p["token"], {"status": target}))
        if body is not None:
            if target == "completed":
                p["active"], p["last_task"] = None, task_id
            else:
                p["active"] = [task_id, target]

    def upload(self) -> None:
        p = self.next_paramedic()
        task_id = p["active"][0] if p["active"] else p["last_task"]
        body, ctype = png_multipart(task_id)
        path = f"/api/v1/paramedics/{p['id']}/xray"
        self.call(UPLOAD, build("POST", path, self.port, p["token"], body, ctype))

    def run(self, kind: str, start_at: float, end_at: float) -> None:
        self.end_at = end_at
        if kind == "mix":
            actions = [getattr(self, name) for name in MIX]
            weights = list(MIX.values())

            def step():
                self.rng.choices(actions, weights)[0]()
        else:
            step = getattr(self, kind)
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while time.monotonic() < end_at:
            step()
        self.http.close()


def client_process(port, index, supervisor, owned, kind, start_at, end_at, out) -> None:
    import resource

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    client = Client(port, index, supervisor, owned)
    client.run(kind, start_at, end_at)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "index": index,
            "latencies": dict(client.latencies),
            "errors": dict(client.errors),
            "samples": client.samples,
            "owned": client.owned,
            "cpu": usage.ru_utime + usage.ru_stime,
            "reconnects": client.http.reconnects,
            "statuses": dict(client.statuses),
        }
    )


def run_phase(name, kind, seconds, ctx) -> dict:
    """N client processes for `seconds`; returns per-endpoint figures and CPU used."""
    mp = multiprocessing.get_context("fork")
    out = mp.Queue()
    n = ctx["clients"]
    start_at = time.monotonic() + 0.5  # all processes forked and connected by then
    end_at = start_at + seconds
    procs = [
        mp.Process(
            target=client_process,
            args=(
                ctx["port"],
                i,
                ctx["supervisor"],
                ctx["owned"][i],
                kind,
                start_at,
                end_at,
                out,
            ),
            daemon=True,
        )
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    while time.monotonic() < start_at:
        time.sleep(0.005)
    before = ctx["meter"].sample() if ctx.get("meter") else None
    load_before = loadavg()[0]
    time.sleep(max(0.0, end_at - time.monotonic()))
    after = ctx["meter"].sample() if ctx.get("meter") else None
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter = Counter()
    samples: list[str] = []
    client_cpu = 0.0
    reconnects = 0
    statuses: Counter = Counter()
    for result in results:
        statuses.update(result["statuses"])
        ctx["owned"][result["index"]] = result["owned"]  # the cycle state goes on
        for endpoint, values in result["latencies"].items():
            latencies[endpoint] += values
        errors.update(result["errors"])
        samples += result["samples"]
        client_cpu += result["cpu"]
        reconnects += result["reconnects"]
    cpu = CpuMeter.used(before, after) if before else None
    total = sum(len(v) for v in latencies.values())
    return {
        "name": name,
        "kind": kind,
        "seconds": seconds,
        "latencies": latencies,
        "errors": errors,
        "samples": samples,
        "client_cpu": client_cpu,
        "cpu": cpu,
        "requests": total,
        "statuses": dict(statuses),
        "reconnects": reconnects,
        "load": (load_before, loadavg()[0]),
    }


# --- report ------------------------------------------------------------------


def pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] * 1000


def endpoint_rows(phase: dict) -> list[dict]:
    rows = []
    for endpoint, values in sorted(phase["latencies"].items(), key=lambda kv: -len(kv[1])):
        ordered = sorted(values)
        rows.append(
            {
                "endpoint": endpoint,
                "requests": len(values),
                "rps": len(values) / phase["seconds"],
                "p50": pct(ordered, 0.50),
                "p95": pct(ordered, 0.95),
                "p99": pct(ordered, 0.99),
                "errors": phase["errors"].get(endpoint, 0),
            }
        )
    return rows


def print_report(phases: list[dict], clients: int, seconds: float) -> tuple[int, float, float]:
    healthz = [p for p in phases if p["kind"] == "healthz"]
    base = statistics.mean(p["requests"] / p["seconds"] for p in healthz)
    each = " and ".join(f"{p['requests'] / p['seconds']:.0f}" for p in healthz)
    print(f"\n/healthz baseline: {each} req/s (before and after), mean {base:.0f} req/s\n")
    print(
        "| phase | endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| ratio to /healthz | app CPU ms/req | db CPU ms/req |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    total_errors = 0
    poll_ratio = poll_304_ratio = cycle_rps = float("nan")
    for phase in phases:
        if phase["kind"] == "mix":
            continue
        cpu = phase["cpu"]
        for row in endpoint_rows(phase):
            ratio = row["rps"] / base
            if phase["kind"] == "poll" and row["endpoint"] == POLL:
                poll_ratio = ratio
            if phase["kind"] == "poll_304" and row["endpoint"] == POLL_304:
                poll_304_ratio = ratio
            if phase["kind"] == "status":
                cycle_rps = phase["requests"] / phase["seconds"]
            total_errors += row["errors"]
            # CPU of the phase over all its requests (the status phase mixes four).
            app = cpu["app"] / phase["requests"] * 1000 if cpu else float("nan")
            db = cpu["db"] / phase["requests"] * 1000 if cpu else float("nan")
            print(
                f"| {phase['name']} | {row['endpoint']} | {row['requests']:,} | {row['rps']:.0f} "
                f"| {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {row['errors']} "
                f"| {ratio:.2f} | {app:.2f} | {db:.2f} |"
            )
    for phase in phases:
        if phase["kind"] != "mix":
            continue
        print(
            f"\nRealistic mix, {phase['seconds']:.0f} s, {clients} clients "
            f"(weights {', '.join(f'{k} {v}' for k, v in MIX.items())}): "
            f"{phase['requests'] / phase['seconds']:.0f} req/s in all\n"
        )
        print("| endpoint | requests | req/s | share | p50 ms | p95 ms | p99 ms | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in endpoint_rows(phase):
            total_errors += row["errors"]
            print(
                f"| {row['endpoint']} | {row['requests']:,} | {row['rps']:.0f} "
                f"| {row['requests'] / phase['requests']:.0%} | {row['p50']:.1f} "
                f"| {row['p95']:.1f} | {row['p99']:.1f} | {row['errors']} |"
            )
        if phase["cpu"]:
            app, db = (phase["cpu"][k] / phase["requests"] * 1000 for k in ("app", "db"))
            print(f"\nmix CPU per request: app {app:.2f} ms, db {db:.2f} ms")
    print()
    for phase in phases:
        print(
            f"{phase['name']:<16} load {phase['load'][0]:.2f} -> {phase['load'][1]:.2f}, "
            f"client CPU {phase['client_cpu'] / phase['seconds']:.2f} cores, "
            f"server CPU {sum((phase['cpu'] or {}).values()) / phase['seconds']:.2f} cores, "
            f"reconnects {phase['reconnects']}"
        )
    samples = [s for p in phases for s in p["samples"]]
    if samples:
        print("\nfirst errors:\n  " + "\n  ".join(samples[:10]))
    print(f"\nfield cycle: {cycle_rps:.0f} writes/s in all = {cycle_rps / base:.2f} of /healthz")
    return total_errors, poll_ratio, poll_304_ratio


def print_inprocess(output: str) -> None:
    rows = json.loads(tagged(output, "LOAD_QUERIES"))
    print("\nQueries per request (in-process, CaptureQueriesContext; under gunicorn each")
    print("request that touches the database also runs the health check, a SELECT 1)\n")
    print("| endpoint | case | queries |")
    print("|---|---|---:|")
    for endpoint, case, n in rows:
        print(f"| {endpoint} | {case} | {n} |")
    timings = json.loads(tagged(output, "LOAD_TIMINGS"))
    base = timings["timings"][HEALTHZ]
    print(
        f"\nIn-process, Django test client, {timings['calls']} calls each, no profiler "
        "(the polling paramedic has one active task):\n"
    )
    print("| endpoint | CPU ms/call | wall ms/call | /healthz CPU / this CPU |")
    print("|---|---:|---:|---:|")
    for name, t in timings["timings"].items():
        print(f"| {name} | {t['cpu']:.2f} | {t['wall']:.2f} | {base['cpu'] / t['cpu']:.2f} |")
    for block in output.split("LOAD_PROFILE ")[1:]:
        head, _, rest = block.partition("\n")
        print(f"\ncProfile of {head}; cumulative time per call by stage:\n")
        for line in rest.splitlines():
            if line.startswith("LOAD_STAGE "):
                print("  " + line[len("LOAD_STAGE ") :])
        tottime = rest.split("LOAD_TOTTIME\n", 1)[1].split("LOAD_END", 1)[0]
        print("\ntop 12 by own time:\n" + tottime.rstrip())


# --- main --------------------------------------------------------------------


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """One Celery worker on the run's queue: deliveries happen there, not in requests."""
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "--pool=solo",
         "-Q", QUEUE, "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return worker


def delete_queue() -> None:
    import kombu

    with kombu.Connection(BROKER_URL, connect_timeout=3) as conn:
        conn.default_channel.queue_delete(QUEUE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (processes)")
    parser.add_argument("--seconds", type=float, default=10, help="per single-endpoint phase")
    parser.add_argument("--mixed-seconds", type=float, default=20, help="the realistic mix")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait until load1 <= this")
    parser.add_argument("--wait-max", type=float, default=240, help="wait at most (s)")
    parser.add_argument("--profile-calls", type=int, default=500)
    args = parser.parse_args()

    arm_deadline("bench/load.py", DEADLINE_S)
    url = os.environ.get("LOAD_DATABASE_URL", DATABASE_URL)
    tmp = Path(tempfile.mkdtemp(prefix="paramedic-load-"))
    server = None
    meter = None
    worker = None
    try:
        quiet = wait_quiet(args.max_load, args.wait_max)
        print(f"start: {quiet}", flush=True)
        t0 = time.monotonic()
        ensure_database(url)
        env = make_env(tmp, url)
        manage(env, "migrate", "--no-input", "-v", "0", timeout=MANAGE_TIMEOUT)
        seed_args = [
            "seed_load",
            "--yes-wipe-this-database",
            f"--paramedics={PARAMEDICS}",
            f"--tasks={TASKS}",
            f"--active={ACTIVE}",
            f"--pending={PENDING}",
            f"--cancelled-share={CANCELLED_SHARE}",
        ]
        seed = json.loads(tagged(manage(env, *seed_args, timeout=MANAGE_TIMEOUT), "LOAD_SEED"))
        print(
            f"seeded {PARAMEDICS} paramedics, {TASKS} tasks ({ACTIVE} active, {PENDING} pending) "
            f"in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        paramedics = seed["paramedics"]
        qc = paramedics[0]  # kept out of the traffic for the in-process measurements
        pool = paramedics[1:]
        owned = [pool[i :: args.clients] for i in range(args.clients)]

        worker = start_worker(env, tmp / "worker.log")
        gunicorn_args = [*GUNICORN_ARGS, "--timeout", "60"]
        server = Gunicorn(
            env, tmp / "gunicorn.log", gunicorn_args, app="config.asgi:application"
        ).start(workers=2)
        meter = CpuMeter(server.process.pid, url)
        print(
            f"gunicorn {' '.join(GUNICORN_ARGS)} on 127.0.0.1:{server.port}, "
            f"{args.clients} clients",
            flush=True,
        )
        ctx = {
            "port": server.port,
            "clients": args.clients,
            "supervisor": seed["supervisor"],
            "owned": owned,
            "meter": meter,
        }
        run_phase("warm-up", "mix", 3, ctx)  # imports, connections, caches: not counted
        plan = [
            ("healthz before", "healthz", args.seconds),
            ("paramedic poll", "poll", args.seconds),
            ("poll, unchanged", "poll_304", args.seconds),
            ("field cycle", "status", args.seconds),
            ("supervisor tasks", "sup_tasks", args.seconds),
            ("supervisor roster", "sup_paramedics", args.seconds),
            ("uploads", "upload", args.seconds),
            ("realistic mix", "mix", args.mixed_seconds),
            ("healthz after", "healthz", args.seconds),
        ]
        phases = []
        for name, kind, seconds in plan:
            phase = run_phase(name, kind, seconds, ctx)
            print(
                f"  {name:<18} {phase['requests'] / seconds:7.0f} req/s, "
                f"{sum(phase['errors'].values())} errors, statuses {phase['statuses']}",
                flush=True,
            )
            phases.append(phase)
        meter.close()
        meter = None
        server.stop()
        end_load = loadavg()

        in_env = {
            **env,
            "LOAD_QC_PARAMEDIC": qc["id"],
            "LOAD_PROFILE_CALLS": str(args.profile_calls),
        }
        inprocess = run_script(in_env, "load_probe.py", timeout=MANAGE_TIMEOUT)

        print(
            f"\nPostgreSQL database {database_name(url)}; gunicorn "
            f"{' '.join(GUNICORN_ARGS)}; {args.clients} clients; {args.seconds:.0f} s per "
            f"single-endpoint phase, {args.mixed_seconds:.0f} s mix; {os.cpu_count()} CPUs"
        )
        print(f"at start: {quiet}; at end: load average {' '.join(f'{x:.2f}' for x in end_load)}")
        errors, poll_ratio, poll_304_ratio = print_report(phases, args.clients, args.seconds)
        print_inprocess(inprocess)
        print(
            f"\n{POLL}: 200 at {poll_ratio:.2f} of /healthz's throughput (goal >= 0.25), "
            f"304 at {poll_304_ratio:.2f} (goal >= 0.5); errors {errors} (must be 0)"
        )
        return 1 if errors else 0
    finally:
        if meter is not None:
            meter.close()
        if server is not None:
            server.stop()
        if worker is not None:
            terminate(worker)
            delete_queue()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
