"""Benchmark event streams (DESIGN §12) on the production server stack, in one run.

    .venv/bin/python bench/live.py [--streams 1000] [--assignments 60]

127.0.0.1 only; stops by itself in about two minutes. PostgreSQL database
`paramedic_bench_live` (created if missing, wiped by seed_load: never point it at
a database you care about), RabbitMQ with a queue of the run's own and one Celery
worker (deliveries are the worker's, as in production), gunicorn with ONE uvicorn
worker (`config.asgi_worker.Worker`, production settings).

It measures:

- idle streams: the worker's RSS, threads and open database connections before
  and after opening --streams paramedic streams (one per paramedic, each its own
  connection), then its CPU over --idle seconds with all of them open;
- latency: --assignments tasks, each created (untimed) and assigned by a
  supervisor to a paramedic whose stream is open; per assignment, the assign
  request's own latency and the time from sending it to the `task.assigned` event
  arriving on that paramedic's stream; p50/p95 of both and the ratio of the p95s
  (goal: event p95 <= 2x assign p95).
"""

import argparse
import json
import os
import selectors
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    Gunicorn,
    arm_deadline,
    children,
    ensure_database,
    manage,
    postgres_banner,
    setup_django,
    tagged,
    terminate,
)
from load import Http, build, delete_queue, make_env, pct, start_worker

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_live"
DEADLINE_S = 8 * 60
TICK = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def db_connections(dbname: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname])
        return cursor.fetchone()[0]


class Streams:
    """Many open streams on raw sockets; records when each sees `task.assigned`."""

    def __init__(self, port: int, paramedics: list[dict]):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        self.owner: dict[socket.socket, str] = {}
        self.arrivals: dict[str, list[float]] = {}
        for p in paramedics:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            path = f"/api/v1/paramedics/{p['id']}/events"
            request = build("GET", path, port, p["token"]).replace(
                b"Accept: application/json", b"Accept: text/event-stream"
            )
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head or b"id: " not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"stream closed: {head[:300]!r}")
                head += chunk
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"stream refused: {head[:300]!r}")
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.buffers[sock] = b""
            self.owner[sock] = p["id"]

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            now = time.monotonic()
            buffer = self.buffers[sock] + data
            while b"\n\n" in buffer:
                frame, _, buffer = buffer.partition(b"\n\n")
                if b"event: task.assigned" in frame:
                    self.arrivals.setdefault(self.owner[sock], []).append(now)
            self.buffers[sock] = buffer

    def wait_for(self, paramedic_id: str, count: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.arrivals.get(paramedic_id, [])) >= count:
                return self.arrivals[paramedic_id][count - 1]
            self.pump(0.05)
        return None

    def close(self) -> None:
        for sock in self.buffers:
            sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--assignments", type=int, default=60)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU")
    args = parser.parse_args()
    arm_deadline("bench/live.py", DEADLINE_S)
    tmp = Path(tempfile.mkdtemp(prefix="paramedic-live-"))
    server = worker = streams = None
    try:
        ensure_database(DATABASE_URL)
        env = make_env(tmp, DATABASE_URL)
        manage(env, "migrate", "--no-input", "-v", "0", timeout=240)
        seed = json.loads(
            tagged(
                manage(
                    env,
                    "seed_load",
                    "--yes-wipe-this-database",
                    f"--paramedics={args.streams}",
                    "--tasks=0",
                    "--active=0",
                    "--pending=0",
                    timeout=240,
                ),
                "LOAD_SEED",
            )
        )
        setup_django(env, migrate=False)
        print(postgres_banner(), file=sys.stderr)
        worker = start_worker(env, tmp / "worker.log")
        server = Gunicorn(
            env,
            tmp / "gunicorn.log",
            ["-w", "1", "-k", "config.asgi_worker.Worker", "--timeout", "60"],
            app="config.asgi:application",
        ).start(workers=1)
        (pid,) = children(server.process.pid)
        paramedics = seed["paramedics"]
        time.sleep(1)
        before = proc_status(pid)
        conns_before = db_connections("paramedic_bench_live")
        started = time.monotonic()
        streams = Streams(server.port, paramedics)
        opened_in = time.monotonic() - started
        time.sleep(2)
        after = proc_status(pid)
        conns_after = db_connections("paramedic_bench_live")
        print(f"{len(paramedics)} streams open in {opened_in:.1f} s", file=sys.stderr)

        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        while time.monotonic() - t0 < args.idle:
            streams.pump(0.5)  # heartbeats are read, as a device would
        idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)

        http = Http(server.port)
        supervisor = seed["supervisor"]
        assign_s, event_s, missing = [], [], 0
        seen: dict[str, int] = {}
        for n in range(args.assignments + 5):  # the first 5 warm up, not counted
            p = paramedics[(n * 7919) % len(paramedics)]
            body = {
                "request_id": f"live-{uuid.uuid4().hex[:16]}",
                "patient_id": f"live-patient-{n}",
                "priority": "urgent",
                "address": "1 Stream Street",
                "location": {"lat": 52.52, "lon": 13.40},
            }
            status, raw = http.request(
                build("POST", "/api/v1/tasks", server.port, supervisor, body)
            )
            task_id = json.loads(raw)["id"]
            sent = time.monotonic()
            status, raw = http.request(
                build(
                    "POST",
                    f"/api/v1/tasks/{task_id}/assign",
                    server.port,
                    supervisor,
                    {"paramedic": p["id"]},
                )
            )
            answered = time.monotonic()
            if status != 200:
                raise RuntimeError(f"assign: HTTP {status} {raw[:300]!r}")
            seen[p["id"]] = seen.get(p["id"], 0) + 1
            arrived = streams.wait_for(p["id"], seen[p["id"]], timeout=10)
            # Free the paramedic again (untimed): cancel the task.
            http.request(
                build(
                    "POST",
                    f"/api/v1/tasks/{task_id}/cancel",
                    server.port,
                    supervisor,
                    {"reason": "bench"},
                )
            )
            if n < 5:
                continue
            assign_s.append(answered - sent)
            if arrived is None:
                missing += 1
            else:
                event_s.append(arrived - sent)
        http.close()

        a, e = sorted(assign_s), sorted(event_s)
        rss_per = (after["VmRSS"] - before["VmRSS"]) / len(paramedics)
        print(
            f"\none uvicorn worker (gunicorn), {len(paramedics)} paramedic streams, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n"
        )
        print("| measure | value |")
        print("|---|---:|")
        print(f"| worker RSS before / after | {before['VmRSS'] / 1024:.0f} MiB / "
              f"{after['VmRSS'] / 1024:.0f} MiB |")  # fmt: skip
        print(f"| RSS per open stream | {rss_per:.1f} KiB |")
        print(f"| worker threads before / after | {before['Threads']} / {after['Threads']} |")
        print(f"| database connections before / after | {conns_before} / {conns_after} |")
        print(f"| worker CPU while idle, all open | {idle_cpu * 100:.2f} % of a core |")
        print(f"| assign request p50 / p95 | {pct(a, 0.5):.1f} / {pct(a, 0.95):.1f} ms |")
        print(f"| assign -> event on the stream p50 / p95 | {pct(e, 0.5):.1f} / "
              f"{pct(e, 0.95):.1f} ms |")  # fmt: skip
        ratio = pct(e, 0.95) / pct(a, 0.95)
        print(f"| event p95 / assign p95 | {ratio:.2f}x |")
        print(f"| events missing | {missing} of {len(assign_s)} |")
        print(f"goal: event p95 <= 2x assign p95: {'met' if ratio <= 2 else 'NOT met'}")
        return 1 if missing else 0
    finally:
        if streams is not None:
            streams.close()
        if server is not None:
            server.stop()
        if worker is not None:
            terminate(worker)
            delete_queue()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
