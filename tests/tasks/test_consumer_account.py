"""The consumer's service account: made on first start, never changed after."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core.roles import is_service
from tasks.inbound import ConsumerAccountUnusable, consumer_user, provision_consumer_user
from tests.factories import UserFactory


def test_it_makes_the_account_on_first_start(settings, db):
    settings.EVENT_CONSUMER_USERNAME = "patient-service"
    user, created = provision_consumer_user()
    assert created
    assert is_service(user) and user.is_active
    assert not user.has_usable_password()  # nobody logs in as the consumer
    assert not user.is_staff and not user.is_superuser
    assert consumer_user() == user

    again, created = provision_consumer_user()
    assert (again, created) == (user, False)
    assert get_user_model().objects.filter(username="patient-service").count() == 1


@pytest.mark.parametrize("account", ["inactive", "not-a-service"])
def test_it_never_revives_an_account_a_person_changed(settings, db, account):
    if account == "inactive":
        UserFactory(username="svc", is_active=False, groups=["services"])
    else:
        UserFactory(username="svc")
    settings.EVENT_CONSUMER_USERNAME = "svc"
    with pytest.raises(ConsumerAccountUnusable, match="activate it"):
        provision_consumer_user()
    user = get_user_model().objects.get(username="svc")
    assert (user.is_active, is_service(user)) == (account != "inactive", account == "inactive")


def test_the_command_refuses_to_start_as_a_disabled_account(settings, db):
    UserFactory(username="svc", is_active=False, groups=["services"])
    settings.EVENT_CONSUMER_USERNAME = "svc"
    settings.EVENT_BUS_URL = "amqp://guest:guest@127.0.0.1:1//"  # never reached
    with pytest.raises(CommandError, match="not an active user in the `services` group"):
        call_command("consume_emergency_requests")
