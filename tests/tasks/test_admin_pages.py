"""The dispatch board and overview pages in the admin."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from tasks.models import EmergencyTask, TaskStatus
from tasks.selectors import response_times
from tasks.services import task_change_status
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task

BOARD = reverse("admin:tasks_board")
OVERVIEW = reverse("admin:tasks_overview")


def test_the_board_shows_active_tasks_by_status_most_urgent_first(console_client, paramedic):
    routine = TaskFactory(request_id="routine-1", priority="routine")
    critical = TaskFactory(request_id="critical-1", priority="critical")
    put_on_task(paramedic, request_id="assigned-1")
    done = TaskFactory(request_id="done-1")
    task_change_status(
        task_id=done.pk,
        to_status="cancelled",
        actor=done.created_by,
        allowed_moves=frozenset({"cancel"}),
    )

    html = console_client.get(BOARD).content.decode()

    assert html.index("critical-1") < html.index("routine-1")  # priority before age
    assert html.index("Pending (2)") < html.index("critical-1") < html.index("Assigned (1)")
    assert html.index("Assigned (1)") < html.index("assigned-1")
    assert "done-1" not in html
    assert routine and critical


def test_assigning_from_the_board_uses_the_service_and_the_admin_log(
    console_client, supervisor, db
):
    near = ParamedicFactory(
        badge_number="NEAR", last_lat=52.52, last_lon=13.405, last_location_at=timezone.now()
    )
    task = TaskFactory(lat=52.52, lon=13.40)

    response = console_client.post(reverse("admin:tasks_board_assign", args=[task.pk]))

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.paramedic_id) == (TaskStatus.ASSIGNED, near.pk)
    assert task.history.last().actor == supervisor
    entry = LogEntry.objects.get(object_id=str(task.pk))
    assert "from the board" in entry.get_change_message()
    # A second try on the same task is refused with a message, not an error page.
    again = console_client.post(reverse("admin:tasks_board_assign", args=[task.pk]), follow=True)
    assert again.status_code == 200
    assert "cannot go from assigned" in again.content.decode()


def test_the_overview_computes_counts_and_percentiles(console_client, db):
    now = timezone.now()
    minutes_to_assign = [1, 2, 3, 4, 10]
    for i, minutes in enumerate(minutes_to_assign):
        paramedic = ParamedicFactory()
        task = put_on_task(paramedic, request_id=f"t-{i}")
        EmergencyTask.objects.filter(pk=task.pk).update(
            created_at=now - timedelta(hours=1),
            assigned_at=now - timedelta(hours=1) + timedelta(minutes=minutes),
        )
    TaskFactory(request_id="waiting-long")

    figures = {f["label"]: f for f in response_times(now - timedelta(hours=24), now)}
    assign = figures["Time to assign"]
    assert assign["count"] == 5
    assert assign["median"] == timedelta(minutes=3)
    assert assign["p90"] == timedelta(minutes=10)
    assert figures["Time to start"]["median"] is None

    html = console_client.get(OVERVIEW, {"hours": 24}).content.decode()
    assert 'data-status="assigned"><b>5</b>' in html
    assert "3 min 0 s" in html
    assert "waiting-long" in html
    assert "<svg" in html


# Session, user, its groups, tasks per hour, the user's and its groups' permissions,
# counts by status, then for each of the 3 response intervals a COUNT(*) of its
# tasks and one for its median and one for its 90th percentile (the value itself is
# read by an ORDER BY ... OFFSET query only when there are tasks to pick from),
# and the 10 longest waiting.
OVERVIEW_QUERIES = 17


def test_the_overview_queries_do_not_grow_with_tasks(console_client, db, django_assert_num_queries):
    TaskFactory.create_batch(3)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        console_client.get(OVERVIEW)
    TaskFactory.create_batch(30)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        console_client.get(OVERVIEW)


@pytest.mark.parametrize("url", [BOARD, OVERVIEW])
def test_staff_without_the_group_may_not_open_dispatch_pages(client, db, url):
    client.force_login(UserFactory(username="clerk", is_staff=True))
    assert client.get(url).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Dispatch board" not in index
