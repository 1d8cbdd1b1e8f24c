"""Benchmark event streams (design §12) on the production server stack, in one run.

    .venv/bin/python bench/live.py [--streams 1000] [--per-user 1] [--assignments 60]

127.0.0.1 only; stops by itself in about two minutes. PostgreSQL database
`paramedic_bench_live` (created if missing, wiped by seed_load: never point it at
a database you care about), RabbitMQ with a queue of the run's own and one Celery
worker (deliveries are the worker's, as in production), gunicorn with ONE uvicorn
worker (`config.asgi_worker.Worker`, production settings).

It measures:

- idle streams: the worker's RSS, threads and open database connections before
  and after opening --streams paramedic streams (--per-user streams for each of
  --streams / --per-user paramedics, each its own connection, plus one supervisor
  stream), then its CPU over --idle seconds with all of them open, and the access
  checks it ran meanwhile;
- latency: --assignments tasks, each created (untimed) and assigned by a
  supervisor to a paramedic whose streams are open; per assignment, the assign
  request's own latency, the time from sending it to the `task.assigned` event
  arriving on every one of that paramedic's streams, and on the supervisor's; p50/p95
  and the ratio of the p95s (goal: event p95 <= 2x assign p95); renders per event.
"""

import argparse
import http.client
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

    def __init__(self, port: int, opening: list[tuple[str, str, str]]):
        """`opening`: (owner, path, token) per stream."""
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        self.owned: dict[str, list[socket.socket]] = {}
        self.arrivals: dict[socket.socket, list[float]] = {}
        for owner, path, token in opening:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            request = build("GET", path, port, token).replace(
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
            self.arrivals[sock] = []
            self.owned.setdefault(owner, []).append(sock)

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("a stream was closed by the server")
            now = time.monotonic()
            buffer = self.buffers[sock] + data
            while b"\n\n" in buffer:
                frame, _, buffer = buffer.partition(b"\n\n")
                if b"event: task.assigned" in frame:
                    self.arrivals[sock].append(now)
                elif b"event: stream.closed" in frame:
                    raise RuntimeError(f"a stream was closed: {frame[-200:]!r}")
            self.buffers[sock] = buffer

    def wait_for(self, owner: str, count: int, timeout: float) -> float | None:
        """When the `count`-th `task.assigned` had reached every stream of `owner`."""
        deadline = time.monotonic() + timeout
        socks = self.owned[owner]
        while time.monotonic() < deadline:
            if all(len(self.arrivals[s]) >= count for s in socks):
                return max(self.arrivals[s][count - 1] for s in socks)
            self.pump(0.05)
        return None

    def close(self) -> None:
        for sock in self.buffers:
            sock.close()


def live_work(port: int) -> dict[str, float]:
    """The worker's renders and access checks so far (its /metrics, from loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    work = {"render": 0.0, "access_check": 0.0}
    for line in text.splitlines():
        if line.startswith("paramedic_live_stream_work_total{"):
            kind = line.split('work="', 1)[1].split('"', 1)[0]
            work[kind] = float(line.rsplit(" ", 1)[1])
    return work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument(
        "--per-user", type=int, default=1, help="streams per paramedic (at most the cap, 5)"
    )
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
                    f"--paramedics={args.streams // args.per_user}",
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
        supervisor = seed["supervisor"]
        opening = [
            (p["id"], f"/api/v1/paramedics/{p['id']}/events", p["token"])
            for _ in range(args.per_user)
            for p in paramedics
        ]
        opening.append(("supervisor", "/api/v1/events", supervisor))
        time.sleep(1)
        before = proc_status(pid)
        conns_before = db_connections("paramedic_bench_live")
        started = time.monotonic()
        streams = Streams(server.port, opening)
        opened_in = time.monotonic() - started
        time.sleep(2)
        after = proc_status(pid)
        conns_after = db_connections("paramedic_bench_live")
        print(f"{len(opening)} streams open in {opened_in:.1f} s", file=sys.stderr)

        work0, cpu0, t0 = live_work(server.port), cpu_seconds(pid), time.monotonic()
        while time.monotonic() - t0 < args.idle:
            streams.pump(0.5)  # heartbeats are read, as a device would
        idle_s = time.monotonic() - t0
        idle_cpu = (cpu_seconds(pid) - cpu0) / idle_s
        idle_checks = (live_work(server.port)["access_check"] - work0["access_check"]) / idle_s

        http = Http(server.port)
        assign_s, event_s, board_s, missing = [], [], [], 0
        seen: dict[str, int] = {}
        work_before = live_work(server.port)
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
            on_board = streams.wait_for("supervisor", n + 1, timeout=10)
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
            if arrived is None or on_board is None:
                missing += 1
            else:
                event_s.append(arrived - sent)
                board_s.append(on_board - sent)
        renders = live_work(server.port)["render"] - work_before["render"]
        http.close()

        a, e, b = sorted(assign_s), sorted(event_s), sorted(board_s)
        rss_per = (after["VmRSS"] - before["VmRSS"]) / len(opening)
        print(
            f"\none uvicorn worker (gunicorn), {len(opening) - 1} paramedic streams "
            f"({args.per_user} for each of {len(paramedics)} paramedics) and a supervisor's, "
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
        print(f"| access checks while idle | {idle_checks:.1f} per second |")
        print(f"| assign request p50 / p95 | {pct(a, 0.5):.1f} / {pct(a, 0.95):.1f} ms |")
        print(f"| assign -> event on all the paramedic's streams p50 / p95 | "
              f"{pct(e, 0.5):.1f} / {pct(e, 0.95):.1f} ms |")  # fmt: skip
        print(f"| assign -> event on the supervisor's stream p50 / p95 | "
              f"{pct(b, 0.5):.1f} / {pct(b, 0.95):.1f} ms |")  # fmt: skip
        # The create, assign and cancel events, each rendered for the views it reaches.
        print(f"| renders per assignment (with its cancel) | {renders / (n + 1):.1f} |")
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
