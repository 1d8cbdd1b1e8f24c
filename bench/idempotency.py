"""The cost of safe replay (design §17) on PostgreSQL: table growth and time per write.

    .venv/bin/python bench/idempotency.py [--writes 1000]

Uses DATABASE_URL, or a dedicated database `paramedic_bench_idempotency` on the
local server (created if missing; its paramedics, tasks and keys are wiped: never
point it at a database you care about). In-process with Django's test client, a
device cycle of field writes (acknowledge, start, on scene, at patient, complete,
and a location update per task: six writes a task) runs --writes times in all:

- once without Idempotency-Keys and once with a new key on every write: the ratio
  of the two times is the mechanism's cost per write;
- the growth of core_idempotencyrecord (table, index and TOAST, from
  pg_total_relation_size after VACUUM) per 1,000 keyed writes, and per row;
- and a replay of every keyed write: all answered from the table, none re-run.
"""

import argparse
import os
import sys
import time

from common import ensure_database, postgres_banner, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/paramedic_bench_idempotency"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=1000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    setup_django(
        {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        quiet=("paramedic.access", "django.request", "integrations.outbox"),
    )
    # After Django is set up (models need the app registry).
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from core.models import IdempotencyRecord
    from integrations.models import OutboxEvent
    from integrations.outbox import relay_only
    from paramedics.models import Paramedic
    from paramedics.services import paramedic_create
    from tasks.models import EmergencyTask, TaskHistory
    from tasks.services import task_assign, task_create

    User = get_user_model()

    def wipe():
        IdempotencyRecord.objects.all().delete()
        OutboxEvent.objects.all().delete()
        TaskHistory.objects.all().delete()
        Paramedic.objects.update(current_task=None, status="off_duty")
        EmergencyTask.objects.all().delete()
        Paramedic.objects.all().delete()
        User.objects.filter(username__startswith="idem-").delete()

    def table_bytes() -> int:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM core_idempotencyrecord")
            cursor.execute("SELECT pg_total_relation_size('core_idempotencyrecord')")
            return cursor.fetchone()[0]

    wipe()
    supervisor = User.objects.create_user(username="idem-supervisor", is_staff=True)
    intake = User.objects.create_user(username="idem-intake")
    medic = paramedic_create(
        badge_number="idem-1",
        first_name="Idem",
        last_name="Potent",
        email="idem@ems.example.org",
        certification_level="paramedic",
        status="available",
    )
    client = Client(
        HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(medic.user)}"
    )
    base = f"/api/v1/paramedics/{medic.pk}"
    tasks_needed = args.writes // 6 + 1
    counter = iter(range(10**9))

    def cycle(keyed: bool, replay: list | None) -> int:
        """One task worked through by the device; returns the writes sent."""
        n = next(counter)
        with relay_only():
            task = task_create(
                request_id=f"idem-{n}", patient_id="p-1", priority="urgent",
                lat=52.5, lon=13.4, created_by=intake,
            ).task  # fmt: skip
            task_assign(task_id=task.pk, actor=supervisor, paramedic_id=medic.pk)
        url = f"{base}/tasks/{task.pk}"
        writes = [
            ("post", url + "/milestones", {"milestone": "acknowledged"}),
            ("post", url, {"status": "in_progress"}),
            ("post", url + "/milestones", {"milestone": "on_scene"}),
            ("post", url + "/milestones", {"milestone": "at_patient"}),
            ("patch", base, {"last_location": {"lat": 52.5, "lon": 13.4}}),
            ("post", url, {"status": "completed"}),
        ]
        for i, (method, path, body) in enumerate(writes):
            headers = {"HTTP_IDEMPOTENCY_KEY": f"dev-{n}-{i}"} if keyed else {}
            response = getattr(client, method)(
                path, body, content_type="application/json", **headers
            )
            assert response.status_code == 200, (path, response.status_code, response.content)
            if replay is not None:
                replay.append((method, path, body, headers))
        return len(writes)

    def run(keyed: bool, replay=None) -> tuple[float, int]:
        started, writes = time.perf_counter(), 0
        for _ in range(tasks_needed):
            writes += cycle(keyed, replay)
        return time.perf_counter() - started, writes

    run(False)  # warm-up: imports, connections, caches
    plain_s, plain_n = run(False)
    before = table_bytes()
    replay = []
    keyed_s, keyed_n = run(True, replay)
    after = table_bytes()
    rows = IdempotencyRecord.objects.count()

    history_rows = TaskHistory.objects.count()
    started = time.perf_counter()
    for method, path, body, headers in replay:
        response = getattr(client, method)(path, body, content_type="application/json", **headers)
        assert response.status_code == 200
        assert response["Idempotent-Replayed"] == "true"
    replay_s = time.perf_counter() - started
    assert TaskHistory.objects.count() == history_rows, "a replay ran a write again"

    plain_ms, keyed_ms = plain_s / plain_n * 1000, keyed_s / keyed_n * 1000
    print(f"{postgres_banner()}; {keyed_n} keyed field writes (6 a task)")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| write without a key | {plain_ms:.2f} ms |")
    print(f"| write with a key | {keyed_ms:.2f} ms |")
    print(f"| keyed / plain time per write | {keyed_ms / plain_ms:.2f}x |")
    print(f"| replayed write (answered from the table) | {replay_s / len(replay) * 1000:.2f} ms |")
    print(f"| idempotency rows | {rows} |")
    print(
        f"| table growth per 1,000 keyed writes | {(after - before) / rows * 1000 / 1024:.0f} KiB |"
    )
    print(f"| bytes per row (table, index, TOAST) | {(after - before) / rows:.0f} |")
    wipe()
    return 0


if __name__ == "__main__":
    sys.exit(main())
