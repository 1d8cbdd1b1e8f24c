"""Real Celery processes for tests: a worker (and beat) on RabbitMQ, on the test database.

Each test gets its own queue name, so parallel test processes never take each
other's messages; processes are stopped by PID at the end of the test.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.db import connection

from tests.processes import terminate

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def broker_url() -> str:
    return os.environ.get("TEST_BROKER_URL", DEFAULT_BROKER)


def broker_reachable(url: str | None = None, timeout: float = 1.0) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url or broker_url())
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 5672), timeout=timeout):
            return True
    except OSError:
        return False


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryProcesses:
    def __init__(self, tmp_path: Path, extra_env: dict[str, str]):
        self.tmp_path = tmp_path
        self.queue = f"paramedic-test-{uuid.uuid4().hex[:10]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url(),
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "OUTBOX_LEASE_SECONDS": "3",
            "OUTBOX_RETRY_BASE_SECONDS": "0.3",
            "OUTBOX_RETRY_MAX_SECONDS": "1",
            "OUTBOX_RELAY_SECONDS": "0.5",
            "REMINDER_CHECK_SECONDS": "3600",
            **extra_env,
        }
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"{name}-{len(self.processes)}.log"
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config.celery_app", *args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process, log

    def start_worker(self, timeout: float = 40) -> subprocess.Popen:
        process, log = self._spawn(
            "worker",
            [
                "worker",
                "--pool=solo",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}-{len(self.processes)}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {log.read_text()[-3000:]}")
            if b"ready." in log.read_bytes():
                return process
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {log.read_text()[-3000:]}")

    def start_beat(self) -> subprocess.Popen:
        process, _ = self._spawn(
            "beat",
            [
                "beat",
                "--loglevel=INFO",
                f"--schedule={self.tmp_path / 'beat-schedule'}",
                "--max-interval=1",
            ],
        )
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL: the process gets no chance to ack, clean up or finish its job."""
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()  # all at once, then wait for each
        for process in self.processes:
            terminate(process, grace=15)


def use_broker(app, url: str, queue: str) -> None:
    """Make this (test) process publish to `url`/`queue` instead of running eagerly."""
    # broker_write_url too: eager settings name an in-memory broker for it.
    app.conf.update(
        task_always_eager=False, broker_url=url, broker_write_url=url, task_default_queue=queue
    )
    app.amqp._producer_pool = None
    app._pool = None
    app.amqp.__dict__.pop("queues", None)
    app.amqp.__dict__.pop("router", None)


class ConsumerProcess:
    """`manage.py consume_emergency_requests` as deployed, on its own exchange and queues.

    Each instance has exchange, queue and dead-letter queue names of its own, so
    parallel tests never take each other's messages.
    """

    def __init__(self, tmp_path: Path, *, username: str, database: str | None = None):
        suffix = uuid.uuid4().hex[:10]
        self.exchange = f"patient.events.test-{suffix}"
        self.queue = f"paramedic.emergency-requests.test-{suffix}"
        self.dead_queue = f"{self.queue}.dead"
        self.out_exchange = f"paramedic.events.test-{suffix}"  # its tasks' events
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": database or database_url(),
            "EVENT_BUS_URL": broker_url(),
            "EVENT_EXCHANGE": self.out_exchange,
            "EVENT_INBOUND_EXCHANGE": self.exchange,
            "EVENT_INBOUND_QUEUE": self.queue,
            "EVENT_INBOUND_DEAD_QUEUE": self.dead_queue,
            "EVENT_CONSUMER_USERNAME": username,
        }
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None
        self.runs = 0

    def start(self, timeout: float = 30) -> subprocess.Popen:
        self.runs += 1
        self.log = self.tmp_path / f"consumer-{self.runs}.log"
        handle = open(self.log, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "consume_emergency_requests"],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        self.wait_for_log(f"consuming {self.queue}", timeout)
        return self.process

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"consumer exited: {self.output()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the consumer's log: {self.output()[-3000:]}")

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            terminate(self.process, grace=15)
