"""Roster in the admin: list, filters, search, bulk status actions."""

from django.contrib.messages import get_messages
from django.urls import reverse

from paramedics.models import Paramedic, ParamedicStatus
from tests.factories import ParamedicFactory, StationFactory, put_on_task

CHANGELIST = reverse("admin:paramedics_paramedic_changelist")


def test_supervisor_sees_roster_with_filters(console_client, paramedic, other_paramedic):
    response = console_client.get(CHANGELIST, {"status__exact": "available", "q": "Lovelace"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "B-1" in html
    assert "B-2" not in html


# The roster changelist: session, user, its groups (supervisor check), COUNT(*)
# filtered and unfiltered, the user's and its groups' permissions (admin), the
# page with current tasks joined, the base stations for the filter; and, because
# the test runs in a transaction, SAVEPOINT and RELEASE around the list.
ROSTER_QUERIES = 9 + 2


def test_roster_query_count_is_constant(console_client, django_assert_num_queries, db):
    ParamedicFactory.create_batch(5)
    with django_assert_num_queries(ROSTER_QUERIES):
        console_client.get(CHANGELIST)
    ParamedicFactory.create_batch(40)
    with django_assert_num_queries(ROSTER_QUERIES):
        assert console_client.get(CHANGELIST).status_code == 200


def test_bulk_actions_go_through_the_service(console_client, paramedic, other_paramedic):
    put_on_task(other_paramedic)
    response = console_client.post(
        CHANGELIST,
        {"action": "mark_off_duty", "_selected_action": [paramedic.pk, other_paramedic.pk]},
        follow=True,
    )
    assert response.status_code == 200
    paramedic.refresh_from_db()
    other_paramedic.refresh_from_db()
    assert paramedic.status == ParamedicStatus.OFF_DUTY
    # on_task is refused with a message, not an exception.
    assert other_paramedic.status == ParamedicStatus.ON_TASK
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("1 paramedic(s) marked off_duty" in t for t in texts)
    assert any(t.startswith("B-2:") for t in texts)


def test_admin_add_creates_login_user(console_client, db):
    StationFactory(code="East")
    response = console_client.post(
        reverse("admin:paramedics_paramedic_add"),
        {
            "badge_number": "ADM-1",
            "first_name": "Flo",
            "last_name": "Nightingale",
            "email": "flo@ems.example.org",
            "phone": "+4930123123",
            "certification_level": "emt",
            "status": "available",
            "base_station": "East",
            "password": "lamp-lady-1854-x",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Paramedic.objects.get(badge_number="ADM-1")
    assert created.user.username == "ADM-1"
    assert created.user.check_password("lamp-lady-1854-x")


def test_admin_add_shows_duplicate_as_form_error(console_client, paramedic):
    response = console_client.post(
        reverse("admin:paramedics_paramedic_add"),
        {
            "badge_number": "b-1",
            "first_name": "Dup",
            "last_name": "Licate",
            "email": "dup@ems.example.org",
            "certification_level": "emt",
            "status": "available",
        },
    )
    assert response.status_code == 200
    assert "This badge number is taken." in response.content.decode()
    assert Paramedic.objects.count() == 1


def test_staff_without_group_cannot_open_roster(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="clerk", is_staff=True))
    assert client.get(CHANGELIST).status_code == 403
