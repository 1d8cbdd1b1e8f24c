import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from paramedics.models import CertificationLevel, Paramedic, ParamedicStatus

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
    base_station = "North"
    user = factory.SubFactory(
        UserFactory,
        username=factory.SelfAttribute("..badge_number"),
        email=factory.SelfAttribute("..email"),
    )
