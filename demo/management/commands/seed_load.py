"""Seed a benchmark database through the services and mint JWTs (bench/load.py).

    python manage.py seed_load --paramedics 200 --tasks 2000 --active 50 --pending 20 \\
        --output seed.json

Destructive: it empties the users, paramedics, tasks, X-ray and outbox tables
first, and refuses to run unless --yes-wipe-this-database is given. Prints one
`LOAD_SEED <json>` line (supervisor token, and per paramedic: id, token, its
active task and last finished task), or writes that JSON to --output.
"""

import json
import multiprocessing
import random
import traceback

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from rest_framework_simplejwt.tokens import AccessToken

from core.roles import SERVICES, SUPERVISORS
from integrations.models import OutboxEvent
from integrations.outbox import relay_only
from paramedics.models import CertificationLevel, ParamedicStatus, Station
from paramedics.services import paramedic_create
from tasks.models import TaskPriority, TaskStatus
from tasks.services import task_assign, task_cancel, task_change_status, task_create

WIPED_TABLES = (
    "auth_user, paramedics_paramedic, tasks_emergencytask, tasks_taskhistory, "
    "tasks_taskreminder, xrays_xrayimage, integrations_outboxevent"
)
# The finished history is most of the seeding time: two processes on 2 cores; each
# paramedic's tasks stay in one of them, so they never wait for each other's locks.
HISTORY_PROCESSES = 2


class Command(BaseCommand):
    help = "Wipe and seed a benchmark database (PostgreSQL) through the services."

    def add_arguments(self, parser):
        parser.add_argument("--paramedics", type=int, default=200)
        parser.add_argument("--tasks", type=int, default=2000)
        parser.add_argument("--active", type=int, default=50, help="assigned or in progress")
        parser.add_argument("--pending", type=int, default=20)
        parser.add_argument("--cancelled-share", type=float, default=0.05)
        parser.add_argument("--output", help="write the JSON here instead of stdout")
        parser.add_argument("--yes-wipe-this-database", action="store_true")

    def handle(self, *args, **options):
        if not options["yes_wipe_this_database"]:
            raise CommandError("seed_load empties the database: pass --yes-wipe-this-database")
        if connection.vendor != "postgresql":
            raise CommandError("seed_load is for PostgreSQL benchmark databases")
        self.options = options
        self.rng = random.Random(7)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {WIPED_TABLES} CASCADE")
        # Thousands of outbox rows: no delivery job each; they are deleted at the end.
        with relay_only():
            seed = self._seed()
        OutboxEvent.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        text = json.dumps(seed)
        if options["output"]:
            with open(options["output"], "w") as handle:
                handle.write(text)
        else:
            self.stdout.write("LOAD_SEED " + text)

    def _seed(self) -> dict:
        User = get_user_model()
        self.supervisor = User.objects.create_user(username="load-supervisor", is_staff=True)
        self.supervisor.groups.add(Group.objects.get_or_create(name=SUPERVISORS)[0])
        self.intake = User.objects.create_user(username="load-intake")
        self.intake.groups.add(Group.objects.get_or_create(name=SERVICES)[0])
        levels = list(CertificationLevel)
        for n in range(12):
            Station.objects.get_or_create(code=f"Station {n}", defaults={"name": f"Station {n}"})
        self.paramedics = [
            paramedic_create(
                badge_number=f"LOAD-{n:04d}",
                first_name="Load",
                last_name=f"Medic {n}",
                email=f"load-{n}@ems.example.org",
                certification_level=levels[n % len(levels)],
                status=ParamedicStatus.AVAILABLE,
                base_station=f"Station {n % 12}",
                last_location=self._near_berlin(),
            )
            for n in range(self.options["paramedics"])
        ]
        state = {str(p.pk): {"active": None, "last_task": None} for p in self.paramedics}
        for pk, task_pk in self._history().items():
            state[pk]["last_task"] = task_pk
        total, active = self.options["tasks"], self.options["active"]
        # Active: paramedics 1..active (0 is left free for bench/load_probe.py).
        for i, paramedic in enumerate(self.paramedics[1 : active + 1]):
            task = self._new_task(total + i)
            task_assign(task_id=task.pk, actor=self.supervisor, paramedic_id=paramedic.pk)
            status = TaskStatus.ASSIGNED
            if i % 2:
                status = TaskStatus.IN_PROGRESS
                task_change_status(task_id=task.pk, to_status=status, actor=paramedic.user)
            state[str(paramedic.pk)]["active"] = [str(task.pk), status]
        for i in range(self.options["pending"]):
            self._new_task(total + active + i)
        return {
            "supervisor": str(AccessToken.for_user(self.supervisor)),
            "paramedics": [
                {"id": str(p.pk), "token": str(AccessToken.for_user(p.user)), **state[str(p.pk)]}
                for p in self.paramedics
            ],
        }

    def _near_berlin(self) -> dict:
        return {
            "lat": 52.52 + self.rng.uniform(-0.2, 0.2),
            "lon": 13.4 + self.rng.uniform(-0.3, 0.3),
        }

    def _new_task(self, n: int):
        location = self._near_berlin()
        return task_create(
            request_id=f"load-seed-{n}",
            patient_id=f"patient-{n}",
            consultation_id=f"consult-{n}",
            priority=self.rng.choice(list(TaskPriority)),
            description="Seeded for the load benchmark.",
            address=f"{n} Bench Street",
            lat=location["lat"],
            lon=location["lon"],
            created_by=self.intake,
        ).task

    def _history(self) -> dict[str, str]:
        """Finished tasks in HISTORY_PROCESSES forked processes; {paramedic: last task}."""
        connections.close_all()  # each child opens its own connection
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        processes = [
            context.Process(target=self._history_part, args=(part, results))
            for part in range(HISTORY_PROCESSES)
        ]
        for process in processes:
            process.start()
        last = {}
        for _ in processes:
            part = results.get(timeout=600)
            if "error" in part:
                raise CommandError(part["error"])
            last.update(part)
        for process in processes:
            process.join()
            if process.exitcode != 0:
                raise CommandError("a seeding process failed")
        return last

    def _history_part(self, part: int, results) -> None:
        try:
            results.put(self._finished_tasks(part))
        except BaseException:
            results.put({"error": traceback.format_exc()})
            raise
        finally:
            connections.close_all()

    def _finished_tasks(self, part: int) -> dict[str, str]:
        """Completed (a few cancelled) tasks of every HISTORY_PROCESSES-th paramedic."""
        self.rng.seed(100 + part)
        o = self.options
        last = {}
        for i in range(part, o["tasks"] - o["active"] - o["pending"], HISTORY_PROCESSES):
            paramedic = self.paramedics[i % len(self.paramedics)]
            task = self._new_task(i)
            task_assign(task_id=task.pk, actor=self.supervisor, paramedic_id=paramedic.pk)
            task_change_status(
                task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=paramedic.user
            )
            if self.rng.random() < o["cancelled_share"]:
                task_cancel(task_id=task.pk, actor=self.supervisor, reason="seeded")
            else:
                task_change_status(
                    task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=paramedic.user
                )
            last[str(paramedic.pk)] = str(task.pk)
        return last
