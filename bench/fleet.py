"""A city's fleet against two web nodes behind HAProxy (design §20), in one run.

    .venv/bin/python bench/fleet.py [--devices 1000] [--seconds 60] [--fixes-per-batch 1]
                                    [--tasks-per-second 1]

127.0.0.1 only; PostgreSQL database `paramedic_bench_fleet` (DATABASE_URL to change it;
created if missing, its `fleet-*` paramedics and tasks wiped: never point it at a
database you care about). Two uvicorn nodes (config.asgi, test settings, their own
ports) behind HAProxy 2.6 (tests/balancer.py, deploy/haproxy.cfg's settings). The
load generator is one asyncio process speaking HTTP/1.1 on raw sockets, so it takes
little CPU.

Phases, printed as they end:

1. baseline: /healthz through the balancer at the fleet's request rate; the app's CPU
   (both nodes and their PostgreSQL backends, from /proc) per request;
2. fleet: every device holds its event stream (through the balancer) and sends a
   batch of --fixes-per-batch fixes every 5 s (staggered), while a dispatcher creates,
   assigns and cancels --tasks-per-second tasks: fixes ingested per second, the
   batch POST's latency, the app's CPU per fix (and its ratio to a /healthz), event
   delivery p50/p99 (assign sent -> `task.assigned` read by the device) against the
   assign request's p99;
3. ceiling: 32 connections posting 1-fix batches back to back for 10 s;
4. reconnect storm: every stream dropped at once (tasks keep flowing) and resumed
   with Last-Event-ID: the time until every device holds every event of its own in the
   log (PostgreSQL's LiveEvent), events lost (must be 0) and repeated (must be 0).
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from common import ROOT, ensure_database, postgres_banner, setup_django

from tests.balancer import Balancer, Node, haproxy_missing, node_env

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_fleet"
TICK = os.sysconf("SC_CLK_TCK")
PERIOD = 5.0  # seconds between a device's batches


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


# --- a lean HTTP/1.1 client on asyncio streams ---------------------------------


class Conn:
    """One keep-alive connection; requests on it take turns."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.lock = asyncio.Lock()

    async def request(self, method: str, path: str, token: str = "", body=None):
        async with self.lock:
            return await self._request(method, path, token, body)

    async def _request(self, method: str, path: str, token: str, body):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        try:
            status, headers = await read_head(self.reader)
            payload = await read_body(self.reader, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise
        if headers.get("connection") == "close":
            self.close()
        return status, payload

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def read_head(reader) -> tuple[int, dict]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip().lower()
    return status, headers


async def read_chunk(reader) -> bytes:
    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
    chunk = await reader.readexactly(size + 2)
    return chunk[:-2]


async def read_body(reader, headers) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        parts = []
        while chunk := await read_chunk(reader):
            parts.append(chunk)
        await reader.readuntil(b"\r\n")
        return b"".join(parts)
    return b""


class Device:
    """A paramedic's phone: one event stream, resumed by Last-Event-ID when it breaks."""

    def __init__(self, paramedic_id: str, token: str, port: int, run):
        self.id = paramedic_id
        self.token = token
        self.port = port
        self.run = run
        self.last_id = ""
        self.ids: list[int] = []
        self.connected = asyncio.Event()
        self.writer = None
        self.connections = 0

    async def follow(self):
        while not self.run.stopping:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                await self._stream()
            self.connected.clear()
            await asyncio.sleep(0.05 + random.random() * 0.1)

    async def _stream(self):
        reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"GET /api/v1/paramedics/{self.id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n"
        )
        if self.last_id:
            head += f"Last-Event-ID: {self.last_id}\r\n"
        self.writer.write(head.encode() + b"\r\n")
        status, headers = await read_head(reader)
        if status != 200:
            await read_body(reader, headers)
            self.writer.close()
            await asyncio.sleep(0.5)
            return
        self.connections += 1
        self.connected.set()
        buffer = b""
        while chunk := await read_chunk(reader):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                self._event(block.decode())
        self.writer.close()

    def _event(self, block: str):
        fields = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "id" in fields:
            self.last_id = fields["id"]
        kind = fields.get("event", "")
        if "data" in fields and kind.startswith("task."):
            self.ids.append(int(fields["id"]))
            if kind == "task.assigned":
                sent = self.run.assign_sent.get(json.loads(fields["data"])["id"])
                if sent is not None and self.run.measuring:
                    self.run.delivery.append(time.perf_counter() - sent)

    def drop(self):
        if self.writer is not None:
            self.writer.close()


class Run:
    def __init__(self):
        self.stopping = False
        self.measuring = False
        self.assign_sent: dict[str, float] = {}
        self.delivery: list[float] = []
        self.assign_latency: list[float] = []
        self.batch_latency: list[float] = []
        self.fixes = 0
        self.batches_failed: dict = {}  # by status, or the exception's name


async def send_fixes(device: Device, conn: Conn, per_batch: int, run: Run, until: float):
    await asyncio.sleep(random.random() * PERIOD)  # stagger the fleet
    step = PERIOD / per_batch
    while time.perf_counter() < until:
        now = time.time()
        fixes = [
            {
                "lat": 52.4 + random.random() * 0.2,
                "lon": 13.3 + random.random() * 0.2,
                "at": datetime.fromtimestamp(now - i * step, UTC).isoformat(),
                "accuracy_m": 8.0,
            }
            for i in range(per_batch)
        ]
        started = time.perf_counter()
        try:
            status, _ = await conn.request(
                "POST", f"/api/v1/paramedics/{device.id}/locations", device.token, {"fixes": fixes}
            )
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status = type(exc).__name__
        if status == 200:
            run.batch_latency.append(time.perf_counter() - started)
            run.fixes += per_batch
        else:
            run.batches_failed[status] = run.batches_failed.get(status, 0) + 1
        pause = min(PERIOD - (time.perf_counter() - started), until - time.perf_counter())
        await asyncio.sleep(max(0.0, pause))


async def dispatch(port: int, token: str, devices: list[Device], rate: float, run: Run, until):
    """Tasks at a city's rate: each created, assigned to a device's paramedic, cancelled."""
    conn = Conn(port)
    number = 0
    while time.perf_counter() < until and not run.stopping:
        began = time.perf_counter()
        number += 1
        device = random.choice(devices)
        body = {
            "request_id": f"fleet-{os.getpid()}-{number}-{random.getrandbits(32)}",
            "patient_id": "patient-1",
            "priority": "urgent",
            "description": "Fall",
            "location": {"lat": 52.5, "lon": 13.4},
        }
        try:
            status, data = await conn.request("POST", "/api/v1/tasks", token, body)
            if status in (200, 201):
                task_id = json.loads(data)["id"]
                run.assign_sent[task_id] = sent = time.perf_counter()
                status, _ = await conn.request(
                    "POST", f"/api/v1/tasks/{task_id}/assign", token, {"paramedic": device.id}
                )
                if run.measuring and status == 200:
                    run.assign_latency.append(time.perf_counter() - sent)
                await conn.request(
                    "POST", f"/api/v1/tasks/{task_id}/cancel", token, {"reason": "bench"}
                )
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - began)))


async def healthz_load(port: int, rate: float, seconds: float) -> int:
    conns = [Conn(port) for _ in range(16)]
    done = 0
    until = time.perf_counter() + seconds

    async def one(conn, offset):
        nonlocal done
        await asyncio.sleep(offset)
        while time.perf_counter() < until:
            began = time.perf_counter()
            status, _ = await conn.request("GET", "/healthz")
            done += status == 200
            await asyncio.sleep(max(0.0, len(conns) / rate - (time.perf_counter() - began)))

    await asyncio.gather(*(one(c, i / rate) for i, c in enumerate(conns)))
    return done


async def ceiling(port: int, devices: list[Device], seconds: float) -> tuple[int, list[float]]:
    conns = [Conn(port) for _ in range(32)]
    until = time.perf_counter() + seconds
    latencies: list[float] = []

    async def one(conn, device):
        while time.perf_counter() < until:
            fix = {"lat": 52.5, "lon": 13.4, "at": datetime.now(UTC).isoformat()}
            began = time.perf_counter()
            status, _ = await conn.request(
                "POST", f"/api/v1/paramedics/{device.id}/locations", device.token, {"fixes": [fix]}
            )
            if status == 200:
                latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(c, devices[i]) for i, c in enumerate(conns)))
    return len(latencies), latencies


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def main_async(args, port, app_pids, devices_data, supervisor_token, expected_for):
    run = Run()
    devices = [Device(pid, token, port, run) for pid, token in devices_data]
    print(f"\n{len(devices)} devices, two nodes behind HAProxy on 127.0.0.1:{port}")
    rate = len(devices) / PERIOD  # the fleet's batch requests per second

    # 1. baseline
    cpu0, wall0 = cpu_seconds(app_pids()), time.perf_counter()
    done = await healthz_load(port, rate, 15)
    healthz_cpu = (cpu_seconds(app_pids()) - cpu0) / done
    print(
        f"\n1. baseline: {done / (time.perf_counter() - wall0):.0f} GET /healthz per s, "
        f"app CPU {healthz_cpu * 1000:.2f} ms per request"
    )

    # 2. fleet
    followers = [asyncio.create_task(d.follow()) for d in devices]
    began = time.perf_counter()
    for device in devices:
        await asyncio.wait_for(device.connected.wait(), 120)
    print(f"\n2. fleet: {len(devices)} streams open in {time.perf_counter() - began:.1f} s")
    client_cpu0 = time.process_time()
    until = time.perf_counter() + args.seconds
    conns = [Conn(port) for _ in range(64)]
    run.measuring = True
    cpu0, wall0 = cpu_seconds(app_pids()), time.perf_counter()
    senders = [
        send_fixes(d, conns[i % len(conns)], args.fixes_per_batch, run, until)
        for i, d in enumerate(devices)
    ]
    # One connection per sender would be 1,000 more sockets; 64 shared keep-alive
    # connections carry the batches (requests on one are sequential: a device waits
    # for the one before it on its connection, as it would for its radio).
    await asyncio.gather(
        dispatch(port, supervisor_token, devices, args.tasks_per_second, run, until),
        *senders,
    )
    wall = time.perf_counter() - wall0
    app_cpu = cpu_seconds(app_pids()) - cpu0
    run.measuring = False
    client_cpu = time.process_time() - client_cpu0
    fix_cpu = app_cpu / max(run.fixes, 1)
    print(
        f"   fixes ingested: {run.fixes / wall:.0f}/s ({run.fixes:,} in {wall:.0f} s, "
        f"{args.fixes_per_batch} per batch; batches failed: {run.batches_failed or 0}); batch POST "
        f"p50 {ms(pct(run.batch_latency, 50))}, p99 {ms(pct(run.batch_latency, 99))}"
    )
    print(
        f"   app CPU {app_cpu:.1f} s of {wall:.0f} s ({app_cpu / wall:.2f} cores): "
        f"{fix_cpu * 1000:.2f} ms per fix = {fix_cpu / healthz_cpu:.1f}x a /healthz "
        f"(streams, tasks and events included); load generator {client_cpu:.1f} s CPU"
    )
    assign_p99 = pct(run.assign_latency, 99)
    print(
        f"   events: {len(run.delivery)} task.assigned delivered, p50 "
        f"{ms(pct(run.delivery, 50))}, p99 {ms(pct(run.delivery, 99))}; assign request p50 "
        f"{ms(pct(run.assign_latency, 50))}, p99 {ms(assign_p99)} "
        f"(delivery p99 = {pct(run.delivery, 99) / assign_p99:.1f}x assign p99; goal <= 3x)"
    )

    # 3. ceiling
    done, latencies = await ceiling(port, devices, 10)
    print(
        f"\n3. ceiling: {done / 10:.0f} 1-fix batches per s from 32 connections, p50 "
        f"{ms(pct(latencies, 50))}, p99 {ms(pct(latencies, 99))}"
    )

    # 4. reconnect storm
    until = time.perf_counter() + 3600
    tasks_flowing = asyncio.create_task(
        dispatch(port, supervisor_token, devices, args.tasks_per_second, run, until)
    )
    await asyncio.sleep(2)
    dropped_at = time.perf_counter()
    for device in devices:
        device.drop()
    await asyncio.sleep(3)  # events committed while the fleet reconnects
    tasks_flowing.cancel()
    await asyncio.sleep(0.5)
    expected = await asyncio.to_thread(expected_for, [d.id for d in devices])
    caught_up_at = None
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        if all(set(expected[d.id]) <= set(d.ids) for d in devices):
            caught_up_at = time.perf_counter()
            break
        await asyncio.sleep(0.1)
    lost = sum(len(set(expected[d.id]) - set(d.ids)) for d in devices)
    repeated = sum(len(d.ids) - len(set(d.ids)) for d in devices)
    reconnected = sum(d.connections >= 2 for d in devices)
    total = sum(len(expected[d.id]) for d in devices)
    caught = f"{caught_up_at - dropped_at:.1f} s" if caught_up_at else "NOT within 120 s"
    print(
        f"\n4. reconnect storm: {len(devices)} streams dropped at once, {reconnected} resumed "
        f"with Last-Event-ID; every device caught up after {caught} (goal: 60 s); "
        f"{total:,} events in all: lost {lost}, repeated {repeated}"
    )
    run.stopping = True
    for device in devices:
        device.drop()
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    return 0 if (lost == 0 and repeated == 0 and caught_up_at) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fixes-per-batch", type=int, default=1)
    parser.add_argument("--tasks-per-second", type=float, default=1)
    args = parser.parse_args()
    if reason := haproxy_missing():
        raise SystemExit(reason)
    url = os.environ.get("DATABASE_URL", DATABASE_URL)
    ensure_database(url)
    setup_django(
        {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        quiet=("paramedic.access",),
    )
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.models import Q
    from rest_framework_simplejwt.tokens import AccessToken

    from core.roles import SUPERVISORS
    from integrations.models import LiveEvent
    from paramedics.models import LocationFix, Paramedic
    from tasks.models import EmergencyTask

    User = get_user_model()
    print(postgres_banner())
    Paramedic.objects.filter(badge_number__startswith="fleet-").update(
        current_task=None, status="available"
    )
    EmergencyTask.objects.filter(request_id__startswith="fleet-").delete()
    LocationFix.objects.filter(paramedic__badge_number__startswith="fleet-").delete()
    existing = Paramedic.objects.filter(badge_number__startswith="fleet-").count()
    if existing < args.devices:
        users = User.objects.bulk_create(
            [User(username=f"fleet-{i}") for i in range(existing, args.devices)]
        )
        Paramedic.objects.bulk_create(
            [
                Paramedic(
                    user=user,
                    badge_number=user.username,
                    first_name="Fleet",
                    last_name=user.username,
                    email=f"{user.username}@ems.example.org",
                    certification_level="paramedic",
                    status="available",
                )
                for user in users
            ]
        )
    supervisor, _ = User.objects.get_or_create(username="fleet-supervisor", is_staff=True)
    supervisor.groups.add(Group.objects.get(name=SUPERVISORS))
    medics = list(
        Paramedic.objects.filter(badge_number__startswith="fleet-")
        .select_related("user")
        .order_by("badge_number")[: args.devices]
    )
    devices_data = [(str(p.id), str(AccessToken.for_user(p.user))) for p in medics]
    supervisor_token = str(AccessToken.for_user(supervisor))
    start_id = LiveEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def expected_for(ids):
        rows = LiveEvent.objects.filter(
            Q(audience_id__in=ids) | Q(former_audience_id__in=ids), id__gt=start_id
        ).values_list("id", "audience_id", "former_audience_id")
        found = {i: [] for i in ids}
        for event_id, audience, former in rows:
            for who in {str(audience) if audience else None, str(former) if former else None}:
                if who in found:
                    found[who].append(event_id)
        connection.close()  # this thread's
        return found

    connection.close()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    env = node_env(
        url,
        work / "cache",
        JWT_ACCESS_MINUTES="120",
        LIVE_HEARTBEAT_SECONDS="15",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    nodes = [Node(name, env, work) for name in ("a", "b")]
    balancer = Balancer(nodes, work)
    try:
        for node in nodes:
            node.start()
        balancer.start()

        def app_pids() -> list[int]:
            with psycopg.connect(url, autocommit=True) as conn:
                backends = [
                    row[0]
                    for row in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ]
            return [node.process.pid for node in nodes] + backends

        return asyncio.run(
            main_async(args, balancer.port, app_pids, devices_data, supervisor_token, expected_for)
        )
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
        print(f"\nlogs: {work}")


if __name__ == "__main__":
    sys.exit(main())
