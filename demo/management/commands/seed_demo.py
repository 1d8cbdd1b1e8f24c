"""Fill a realistic shift so the console can be tried at once after `make run`.

    python manage.py seed_demo            # once; a second run changes nothing
    python manage.py seed_demo --password s3cret
    PORT=8001 python manage.py seed_demo  # the port `make run` serves on, for the login URL

Creates a supervisor login, four Berlin stations with a week of shifts (from
yesterday, day 06-18 and night 18-06, with a few gaps for the coverage view),
paramedics across them, tasks in every state with plausible timings over the last
hours, and X-rays (PNG and DICOM); four hospitals (one on diversion, with a staff
login) with the crews' handoffs: offloaded ones for the overview, a few in flight.
State changes go through the same services as the API; only the timestamps are
moved into the past afterwards, so the overview has a history to show.
"""

import hashlib
import io
import logging
import os
import random
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

from core.roles import SERVICES, SUPERVISORS
from hospitals.destinations import rank_destinations
from hospitals.handoffs import handoff_acknowledge, handoff_offload, handoff_send
from hospitals.models import Acuity, Handoff, Hospital, HospitalStatus, Sex
from hospitals.services import hospital_create, hospital_staff_create
from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus, Station
from paramedics.services import paramedic_create, shift_create, station_create
from tasks.models import CallType, EmergencyTask, Milestone, TaskPriority, TaskStatus
from tasks.services import (
    call_types_ensure_defaults,
    task_assign,
    task_cancel,
    task_change_status,
    task_create,
    task_record_milestone,
)
from xrays.services import xray_upload

STATIONS = {
    "Mitte": (52.5200, 13.4050),
    "Kreuzberg": (52.4986, 13.4030),
    "Spandau": (52.5360, 13.2000),
    "Koepenick": (52.4450, 13.5740),
}
ADDRESSES = {
    "Mitte": "Torstrasse 1, 10119 Berlin",
    "Kreuzberg": "Oranienstrasse 40, 10999 Berlin",
    "Spandau": "Carl-Schurz-Strasse 10, 13597 Berlin",
    "Koepenick": "Bahnhofstrasse 12, 12555 Berlin",
}
# Shifts the demo week leaves thin, so the coverage view has gaps to show:
# (station, day from yesterday, "day"/"night") -> how many of the 2 come.
THIN_SHIFTS = {
    ("Koepenick", 2, "night"): 1,
    ("Koepenick", 4, "night"): 1,
    ("Spandau", 3, "night"): 0,
    ("Kreuzberg", 5, "day"): 1,
}
FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elif",
    "Finn",
    "Greta",
    "Hakan",
    "Ida",
    "Jonas",
    "Karla",
    "Lukas",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sami",
    "Tina",
    "Umut",
]
LAST = [
    "Schmidt",
    "Yilmaz",
    "Nowak",
    "Weber",
    "Fischer",
    "Kaya",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
]
STREETS = [
    "Torstrasse",
    "Oranienstrasse",
    "Karl-Marx-Allee",
    "Sonnenallee",
    "Kantstrasse",
    "Frankfurter Allee",
    "Muellerstrasse",
    "Hermannstrasse",
]
# What callers report, and the call type (design §18) a call taker would choose for it.
COMPLAINTS = [
    ("Collapsed, not breathing: CPR by a bystander", "cardiac_arrest"),
    ("Fall from ladder, suspected wrist fracture", "minor_injury"),
    ("Breathing difficulty", "breathing_problem"),
    ("Cycling accident, hit by a car", "major_trauma"),
    ("Sudden weakness of one side, slurred speech", "stroke"),
    ("Severe allergic reaction", "other"),
    ("Fall at home, hip pain", "fall"),
    ("Sports injury, ankle", "minor_injury"),
]
DEMO_BADGE = "DEMO-001"
# Berlin emergency departments (design §21): code -> (name, lat, lon, capabilities).
HOSPITALS = {
    "charite-mitte": ("Charite Campus Mitte", 52.5265, 13.3766, ["stroke", "stemi", "trauma_1"]),
    "vivantes-fhain": ("Vivantes Friedrichshain", 52.5242, 13.4407, ["stroke", "stemi"]),
    "ukb-marzahn": ("Unfallkrankenhaus Berlin", 52.5181, 13.5669, ["trauma_1", "burns"]),
    "drk-westend": ("DRK Kliniken Westend", 52.5170, 13.2790, ["pediatric"]),
}
DIVERTED = ("vivantes-fhain", "CT scanner down")
HOSPITAL_STAFF = "demo-ed-charite"


class Command(BaseCommand):
    help = "Fill a realistic demo shift (paramedics, tasks in every state, X-rays)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="demo-supervisor-2026")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, password: str, seed: int, verbosity: int, **options):
        if Paramedic.objects.filter(badge_number=DEMO_BADGE).exists():
            self.stdout.write("Demo data is already there; nothing to do.")
            return
        rng = random.Random(seed)
        # The handoffs draw from their own sequence, so the rest of the demo stays the
        # same whatever they draw.
        self.report_rng = random.Random(seed)
        with _quiet(verbosity):
            supervisor = self._supervisor(password)
            service = self._service()
            stations = self._stations()
            paramedics = self._paramedics(rng, password)
            shifts = self._shifts(stations, paramedics)
            self._hospitals(password)
            tasks = self._tasks(rng, service, supervisor, paramedics)
            xrays = self._xrays(tasks)
            handoffs = Handoff.objects.count()
        server = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo shift ready: {len(stations)} stations, {shifts} shifts, "
                f"{len(paramedics)} paramedics, {len(tasks)} tasks, {xrays} X-rays, "
                f"{len(HOSPITALS)} hospitals, {handoffs} handoffs.\n"
                f"Console: {server}/admin/ as 'demo-supervisor', password '{password}'.\n"
                f"Devices: badge numbers DEMO-001.. as usernames, the same password; "
                f"API docs at {server}/api/docs/; a hospital: '{HOSPITAL_STAFF}'."
            )
        )

    def _supervisor(self, password):
        user, _ = get_user_model().objects.get_or_create(
            username="demo-supervisor", defaults={"is_staff": True, "email": "sup@demo.local"}
        )
        user.is_staff = True
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get_or_create(name=SUPERVISORS)[0])
        return user

    def _service(self):
        user, _ = get_user_model().objects.get_or_create(username="demo-patient-service")
        user.groups.add(Group.objects.get_or_create(name=SERVICES)[0])
        return user

    def _hospitals(self, password: str) -> None:
        for code, (name, lat, lon, capabilities) in HOSPITALS.items():
            if not Hospital.objects.filter(code=code).exists():
                hospital_create(
                    code=code,
                    name=name,
                    location={"lat": lat, "lon": lon},
                    capabilities=capabilities,
                    ed_beds_available=len(code) % 5,
                )
        Hospital.objects.filter(code=DIVERTED[0]).update(
            status=HospitalStatus.DIVERSION, diversion_reason=DIVERTED[1]
        )
        if not get_user_model().objects.filter(username=HOSPITAL_STAFF).exists():
            hospital_staff_create(
                hospital=Hospital.objects.get(code="charite-mitte"),
                username=HOSPITAL_STAFF,
                password=password,
            )

    def _report(self, task, medic, *, eta) -> Handoff:
        """The crew's pre-arrival report to the best open destination (design §21)."""
        rng = self.report_rng
        destination = next(d for d in rank_destinations(task) if not d.diversion)
        systolic = rng.randint(95, 185)
        return handoff_send(
            task_id=task.pk,
            paramedic_id=medic.pk,
            hospital_id=destination.hospital.pk,
            eta=eta,
            report={
                "acuity": Acuity.EMERGENT if task.priority == "critical" else Acuity.URGENT,
                "age_years": rng.randint(18, 92),
                "sex": rng.choice([Sex.FEMALE, Sex.MALE]),
                "chief_complaint": task.description,
                "stable": task.priority != "critical",
                "bp_systolic": systolic,
                "bp_diastolic": systolic - rng.randint(30, 60),
                "pulse": rng.randint(55, 130),
                "spo2": rng.randint(88, 99),
                "gcs": rng.choice([15, 15, 14, 13]),
                "treatments": rng.sample(["oxygen", "IV access", "analgesia", "splint"], 2),
            },
        )

    def _stations(self) -> dict[str, Station]:
        stations = {}
        for code, (lat, lon) in STATIONS.items():
            stations[code] = Station.objects.filter(code=code).first() or station_create(
                code=code,
                name=f"Rescue station {code}",
                address=ADDRESSES[code],
                location={"lat": lat, "lon": lon},
                min_staff=2,
            )
        return stations

    def _shifts(self, stations: dict[str, Station], paramedics: list[Paramedic]) -> int:
        """A week from yesterday: day (06-18) and night (18-06) shifts of two each.

        The station's six paramedics rotate by four a day, so nobody has two shifts
        at once (the roster's rule would refuse it) and everyone has rest between.
        """
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        count = 0
        for code, station in stations.items():
            crew = [p for p in paramedics if p.base_station_id == code]
            for day in range(8):
                start_of_day = today + timedelta(days=day - 1)
                for n, (name, starts) in enumerate((("day", 6), ("night", 18))):
                    people = [crew[(4 * day + 2 * n + k) % len(crew)] for k in range(2)]
                    people = people[: THIN_SHIFTS.get((code, day, name), 2)]
                    if not people:
                        continue
                    begins = start_of_day + timedelta(hours=starts)
                    shift_create(
                        station=station,
                        starts_at=begins,
                        ends_at=begins + timedelta(hours=12),
                        paramedics=people,
                        notes=f"{name} shift",
                    )
                    count += 1
        return count

    def _paramedics(self, rng, password: str) -> list[Paramedic]:
        now = timezone.now()
        levels = list(CertificationLevel.values)
        created = []
        for i in range(24):
            station, (lat, lon) = list(STATIONS.items())[i % len(STATIONS)]
            first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
            located = i % 6 != 5
            age = timedelta(minutes=rng.choice([1, 2, 4, 8, 30])) if located else None
            paramedic = paramedic_create(
                badge_number=f"DEMO-{i + 1:03d}",
                first_name=first,
                last_name=last,
                email=f"demo{i + 1:03d}@ems.demo.local",
                phone=f"+49301234{i:04d}",
                certification_level=levels[i % len(levels)],
                status=ParamedicStatus.AVAILABLE if i % 5 != 4 else ParamedicStatus.OFF_DUTY,
                base_station=station,
                password=password,
                last_location={
                    "lat": lat + rng.uniform(-0.03, 0.03),
                    "lon": lon + rng.uniform(-0.05, 0.05),
                    "recorded_at": now - age,
                }
                if located
                else None,
            )
            created.append(paramedic)
        return created

    def _work(self, rng, task, medic, target, assigned_at, now) -> EmergencyTask:
        """The crew's side, through the services with the device times of each step
        (design §17): acknowledge, start (en route), then the milestones as far as
        the task got; about two in three completed tasks transport the patient."""
        step = assigned_at + timedelta(seconds=rng.randint(5, 40))
        if step >= now:
            return task
        task = task_record_milestone(
            task_id=task.pk, milestone=Milestone.ACKNOWLEDGED, actor=medic.user, at=step
        )
        if target not in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
            return task
        # Critical calls drive faster (blue lights); a few drives are long.
        drive = (150, 420) if task.priority == "critical" else (200, 660)
        plan = [
            (None, rng.randint(15, 75)),  # start: en route
            (Milestone.ON_SCENE, rng.randint(*drive)),
            (Milestone.AT_PATIENT, rng.randint(45, 180)),
        ]
        if target == TaskStatus.COMPLETED and rng.random() < 0.66:
            plan += [
                (Milestone.TRANSPORTING, rng.randint(480, 1200)),
                (Milestone.AT_DESTINATION, rng.randint(480, 1500)),
            ]
        handoff = None
        for milestone, seconds in plan:
            step += timedelta(seconds=seconds)
            if step >= now:
                return task  # still on the way: an active task, part done
            if milestone is None:
                task = task_change_status(
                    task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=medic.user, at=step
                )
            else:
                task = task_record_milestone(
                    task_id=task.pk, milestone=milestone, actor=medic.user, at=step
                )
            if milestone == Milestone.TRANSPORTING:
                handoff = self._report(task, medic, eta=step + timedelta(minutes=15))
                Handoff.objects.filter(pk=handoff.pk).update(sent_at=step)  # demo: the past
        if target == TaskStatus.COMPLETED:
            step = min(now, step + timedelta(seconds=rng.randint(300, 900)))
            if handoff is not None:
                # Some hospitals keep the crew waiting (design §21's offload time).
                wait = self.report_rng.choice([0, 0, 600, 1500])
                step = min(now, step + timedelta(seconds=wait))
                # Offloading completes the task; then its times move into the past.
                handoff_offload(handoff_id=handoff.pk, actor=medic.user)
                Handoff.objects.filter(pk=handoff.pk).update(offloaded_at=step)
                EmergencyTask.objects.filter(pk=task.pk).update(completed_at=step)
                task.refresh_from_db()
            else:
                task = task_change_status(
                    task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=medic.user, at=step
                )
        elif task.at_patient_at is not None and self.report_rng.random() < 0.75:
            # In flight: transporting now, the report sent, some acknowledged.
            task = task_record_milestone(
                task_id=task.pk, milestone=Milestone.TRANSPORTING, actor=medic.user, at=now
            )
            eta = now + timedelta(minutes=self.report_rng.randint(4, 14))
            handoff = self._report(task, medic, eta=eta)
            if self.report_rng.random() < 0.5:
                handoff_acknowledge(handoff_id=handoff.pk, actor=medic.user)
        return task

    def _tasks(self, rng, service, supervisor, paramedics) -> list[EmergencyTask]:
        """Tasks over the last 12 hours, in every state, with realistic timings."""
        now = timezone.now()
        plan = (
            [TaskStatus.COMPLETED] * 14
            + [TaskStatus.CANCELLED] * 3
            + [TaskStatus.IN_PROGRESS] * 4
            + [TaskStatus.ASSIGNED] * 3
            + [TaskStatus.PENDING] * 5
        )
        free = [
            p
            for p in paramedics
            if p.status == ParamedicStatus.AVAILABLE and p.last_lat is not None
        ]
        call_types_ensure_defaults()
        call_types = {call_type.code: call_type for call_type in CallType.objects.all()}
        tasks = []
        for i, target in enumerate(plan):
            station_lat, station_lon = rng.choice(list(STATIONS.values()))
            created_ago = (
                timedelta(minutes=rng.randint(3, 40))
                if target in (TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)
                else timedelta(minutes=rng.randint(60, 12 * 60))
            )
            patient_id = f"patient-{rng.randint(1000, 9999)}"
            priority = rng.choice(list(TaskPriority.values))
            description, call_type = rng.choice(COMPLAINTS)
            task = task_create(
                request_id=f"demo-{i + 1:04d}",
                patient_id=patient_id,
                consultation_id=f"consult-{i + 1:04d}",
                priority=priority,
                call_type=call_types[call_type],
                description=description,
                address=f"{rng.choice(STREETS)} {rng.randint(1, 200)}, Berlin",
                lat=station_lat + rng.uniform(-0.04, 0.04),
                lon=station_lon + rng.uniform(-0.06, 0.06),
                created_by=service,
            ).task
            stamps = {"created_at": now - created_ago}
            if target != TaskStatus.PENDING and not (target == TaskStatus.CANCELLED and i % 2):
                if not free:
                    break
                medic = free.pop(0)
                task = task_assign(task_id=task.pk, actor=supervisor, paramedic_id=medic.pk)
                stamps["assigned_at"] = stamps["created_at"] + timedelta(
                    seconds=rng.randint(20, 150)
                )
                # Demo only: assigned in the past before the crew's steps, which may
                # not come before their assignment.
                EmergencyTask.objects.filter(pk=task.pk).update(**stamps)
                task = self._work(rng, task, medic, target, stamps["assigned_at"], now)
                if target == TaskStatus.COMPLETED:
                    free.append(medic)
            if target == TaskStatus.CANCELLED:
                task = task_cancel(task_id=task.pk, actor=service, reason="patient cancelled")
                stamps["cancelled_at"] = stamps["created_at"] + timedelta(minutes=5)
                if task.paramedic_id:
                    free.append(Paramedic.objects.get(pk=task.paramedic_id))
            with transaction.atomic():
                # Demo only: move the timings into the past for the overview.
                EmergencyTask.objects.filter(pk=task.pk).update(**stamps)
                task.history.filter(to_status=TaskStatus.PENDING, from_status="").update(
                    at=stamps["created_at"]
                )
            tasks.append(task)
        return tasks

    def _xrays(self, tasks) -> int:
        count = 0
        with_medic = [t for t in tasks if t.paramedic_id][:6]
        for i, task in enumerate(with_medic):
            task.refresh_from_db()
            paramedic = task.paramedic
            if i % 3 == 2:
                with open(get_testdata_file("CT_small.dcm", download=False), "rb") as handle:
                    content, name = handle.read(), "scan.dcm"
            else:
                image = Image.new("L", (512, 512), 12)
                draw = ImageDraw.Draw(image)
                draw.ellipse((150, 60, 360, 470), outline=220, width=18)
                draw.text((12, 12), f"DEMO {task.request_id}", fill=255)
                buffer = io.BytesIO()
                image.save(buffer, "PNG")
                content, name = buffer.getvalue(), "wrist.png"
            upload = SimpleUploadedFile(name, content)
            upload.sha256 = hashlib.sha256(content).hexdigest()  # as the upload handler does
            xray_upload(
                paramedic=paramedic,
                task=task,
                image=upload,
                uploaded_by=paramedic.user,
                body_part="wrist" if name.endswith("png") else "chest",
            )
            count += 1
        return count


@contextmanager
def _quiet(verbosity: int):
    """Without -v 2, the service's own INFO lines (one or two per event delivered
    or logged) are held back: the summary is what a newcomer needs."""
    if verbosity >= 2:
        yield
        return
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
