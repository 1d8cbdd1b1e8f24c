"""The embedded default mixed with the event bus: SQLite in a file, the after-commit
publisher's thread writing beside the command that changes things (seed_demo).

Two writers on SQLite must wait for each other: a deferred transaction that read
and then wrote failed at once with "database is locked" (SQLite cannot wait for
the lock there without risking a deadlock).
"""

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection
from kombu import Connection, Exchange

from tests.integrations.workers import broker_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.skipif(
        connection.vendor != "sqlite",
        reason="the embedded default's mix; the SQLite run covers it",
    ),
]


def _manage(*args, env, timeout=180):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_seed_demo_with_the_bus_on_a_sqlite_file(tmp_path):
    exchange = f"paramedic-test-{uuid.uuid4().hex[:10]}"
    database = tmp_path / "paramedic.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "S3_", "EVENT_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{database}",
        EVENT_BUS_URL=broker_url(),
        EVENT_EXCHANGE=exchange,
    )
    try:
        assert _manage("migrate", "--noinput", "-v", "0", env=env).returncode == 0
        seeded = _manage("seed_demo", env=env)
    finally:
        with Connection(broker_url()) as broker:
            Exchange(exchange, type="topic")(broker.default_channel).delete()

    assert seeded.returncode == 0, seeded.stderr[-3000:]
    assert "database is locked" not in seeded.stderr
    # A newcomer reads a summary, not a log line per event.
    lines = (seeded.stdout + seeded.stderr).strip().splitlines()
    assert len(lines) <= 4, lines
    assert lines[0].startswith("Demo shift ready")
    # The publisher's thread did write: every bus row it published is marked delivered.
    with sqlite3.connect(database) as db:
        states = dict(
            db.execute(
                "SELECT state, count(*) FROM integrations_outboxevent "
                "WHERE destination = 'bus' GROUP BY state"
            ).fetchall()
        )
    assert states.get("delivered", 0) > 50, states
