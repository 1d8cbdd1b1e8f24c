from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import HOSPITALS
from hospitals.models import Hospital, HospitalStaff
from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus, Shift, Station
from paramedics.services import shift_create
from tasks.models import CallType, EmergencyTask, TaskPriority
from tasks.services import call_types_ensure_defaults, task_assign, task_create

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for name in extracted or ():
            # get_or_create: transactional tests flush the groups the migration made.
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class StationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Station
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"ST-{n}")
    name = factory.LazyAttribute(lambda s: f"Station {s.code}")
    address = "1 Station Road"
    lat = 52.52
    lon = 13.405
    min_staff = 1


class ParamedicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Paramedic

    badge_number = factory.Sequence(lambda n: f"B-{1000 + n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda p: f"{p.badge_number.lower()}@ems.example.org")
    phone = "+4930123456"
    certification_level = CertificationLevel.PARAMEDIC
    status = ParamedicStatus.AVAILABLE
    base_station = "North"  # a station code (made on first use) or a Station
    user = factory.SubFactory(
        UserFactory,
        username=factory.SelfAttribute("..badge_number"),
        email=factory.SelfAttribute("..email"),
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        station = kwargs.get("base_station")
        if isinstance(station, str):
            # Codes are one station whatever their case ("North", "north").
            found = Station.objects.filter(code__iexact=station).first() if station else None
            kwargs["base_station"] = found or (StationFactory(code=station) if station else None)
        return super()._create(model_class, *args, **kwargs)


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"H-{n}")
    name = factory.LazyAttribute(lambda h: f"Hospital {h.code}")
    address = "1 Hospital Way"
    lat = 52.53
    lon = 13.38
    capabilities = factory.LazyFunction(list)
    ed_beds_available = 4


def staff_of(hospital: Hospital, username: str):
    """A login of `hospital`'s staff (group `hospitals`)."""
    user = UserFactory(username=username, groups=[HOSPITALS])
    HospitalStaff.objects.create(user=user, hospital=hospital)
    return user


def shift_for(*paramedics, station=None, starts_at, ends_at, notes: str = "") -> Shift:
    """A shift planned through the roster service (the overlap rule applies)."""
    return shift_create(
        station=station or StationFactory(code="North"),
        starts_at=starts_at,
        ends_at=ends_at,
        paramedics=list(paramedics),
        notes=notes,
    )


class TaskFactory(factory.django.DjangoModelFactory):
    """A pending task as the intake leaves it (use tasks.services to move it on)."""

    class Meta:
        model = EmergencyTask

    request_id = factory.Sequence(lambda n: f"req-{n}")
    patient_id = factory.Sequence(lambda n: f"patient-{n}")
    consultation_id = factory.Sequence(lambda n: f"consult-{n}")
    priority = TaskPriority.URGENT
    description = "Fall at home, suspected wrist fracture"
    address = "1 Example Street"
    lat = 52.52
    lon = 13.405
    created_by = factory.SubFactory(UserFactory, username="intake-service")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Through the intake service, so the "received" history row exists too.
        # A call type may be given by its code.
        if isinstance(kwargs.get("call_type"), str):
            call_types_ensure_defaults()  # a transactional test may have flushed them
            kwargs["call_type"] = CallType.objects.get(code=kwargs["call_type"])
        return task_create(**kwargs).task


def put_on_task(
    paramedic, *, actor=None, assigned_ago: timedelta | None = None, **task_fields
) -> EmergencyTask:
    """Assign a fresh task to `paramedic` through the state machine; with
    `assigned_ago`, received and assigned that long ago (so device times of the
    crew's steps may lie that far back)."""
    task = TaskFactory(**task_fields)
    task = task_assign(task_id=task.pk, actor=actor or task.created_by, paramedic_id=paramedic.pk)
    if assigned_ago is not None:
        task.created_at = task.assigned_at = timezone.now() - assigned_ago
        EmergencyTask.objects.filter(pk=task.pk).update(
            created_at=task.created_at, assigned_at=task.assigned_at
        )
    return task
