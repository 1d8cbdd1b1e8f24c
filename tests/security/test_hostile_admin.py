"""The admin console validates like the API (design §16): hostile query strings and
form posts are a message or a 400, never a 500, and change nothing."""

import pytest
from django.urls import reverse

from tests.factories import TaskFactory, put_on_task
from tests.helpers import db_state

CHANGELISTS = [
    "admin:paramedics_paramedic_changelist",
    "admin:tasks_emergencytask_changelist",
    "admin:xrays_xrayimage_changelist",
    "admin:integrations_outboxevent_changelist",
    "admin:paramedics_station_changelist",
    "admin:paramedics_shift_changelist",
]
HOSTILE_QUERIES = [
    {"base_station": "\x00"},
    {"base_station__exact": "\x00"},
    {"q": "\x00"},
    {"q": "x" * 10000},
    {"status__exact": "\x00"},
    {"created_at__gte": "0001-01-01T00:00:00+14:00"},
    {"created_at__lt": "9999-12-31T23:59:59-12:00"},
    {"created_at__gte": "0465-12-21 06:28:39.5-19:27"},
    {"created_at__year": "99999999999999999999"},
    {"created_at__month": "-1", "created_at__year": "2026"},
    {"created_at__day": "\x00"},
    {"paramedic__id__exact": "not-a-uuid"},
    {"id": "not-a-uuid"},
    {"o": "999.-abc"},
    {"p": "-1"},
    {"p": "99999999999999999999"},
    {"e": "\x00"},
    {"starts_at__gte": "0001-01-01T00:00:00+14:00"},
    {"starts_at__year": "99999999999999999999"},
    {"station__id__exact": "not-a-uuid"},
    {"paramedics__id__exact": "\x00"},
    {"when": "\x00"},
]


@pytest.fixture
def console_world(paramedic):
    put_on_task(paramedic)
    TaskFactory()


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: repr(q)[:60])
@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_hostile_changelist_queries_are_never_a_500(
    console_client, console_world, changelist, query
):
    before = db_state()
    response = console_client.get(reverse(changelist), query)
    assert response.status_code in (200, 302, 400), (response.status_code, query)
    assert db_state() == before


@pytest.mark.parametrize(
    "page",
    ["admin:tasks_board", "admin:tasks_overview", "admin:tasks_map", "admin:paramedics_shift_week"],
)
@pytest.mark.parametrize(
    "query",
    [
        {"hours": "\x00"},
        {"hours": "9" * 30},
        {"x": "\x00"},
        {"start": "\x00"},
        {"start": "9" * 30},
        {"start": "0001-01-01"},
    ],
)
def test_hostile_console_page_queries(console_client, console_world, page, query):
    response = console_client.get(reverse(page), query)
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "chosen", ["not-a-uuid", "\x00", "0" * 40, "00000000-0000-0000-0000-000000000000"]
)
def test_hostile_board_assignments_change_nothing(console_client, console_world, chosen):
    task = TaskFactory()
    before = db_state()
    response = console_client.post(
        reverse("admin:tasks_board_assign", args=[task.pk]), {"paramedic": chosen}, follow=True
    )
    assert response.status_code in (200, 400)
    assert db_state() == before
    if response.status_code == 200:
        assert [m.level_tag for m in response.context["messages"]] in (["error"], ["warning"])


@pytest.mark.parametrize(
    "query",
    [
        {"starts_at": "\x00", "ends_at": "9999-12-31T23:59:59-12:00"},
        {"starts_at": "0001-01-01T00:00:00+14:00", "station": "not-a-uuid"},
        {"starts_at": "x" * 10000},
    ],
)
def test_hostile_shift_add_links_are_ignored(console_client, console_world, query):
    response = console_client.get(reverse("admin:paramedics_shift_add"), query)
    assert response.status_code in (200, 400)  # a NUL anywhere is a 400 (middleware)
