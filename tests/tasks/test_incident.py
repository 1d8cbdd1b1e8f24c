"""The incident page (design §19): a task as the supervisor works it."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from paramedics.services.locations import location_fixes_record
from tasks.models import EmergencyTask, TaskHistory, TaskStatus
from tasks.services import task_change_status, task_record_milestone
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task


def incident(task, action: str = "") -> str:
    name = f"admin:tasks_incident_{action}" if action else "admin:tasks_incident"
    return reverse(name, args=[task.pk])


def located(badge: str, north_km: float = 0.0, **fields):
    return ParamedicFactory(
        badge_number=badge,
        last_lat=52.52 + north_km / 111.2,
        last_lon=13.405,
        last_location_at=timezone.now(),
        **fields,
    )


def test_the_task_list_opens_a_task_on_its_incident_page(console_client, db):
    task = TaskFactory(request_id="list-1")
    html = console_client.get(reverse("admin:tasks_emergencytask_changelist")).content.decode()
    assert f'href="{incident(task)}"' in html
    page = console_client.get(incident(task)).content.decode()
    # The raw form one click away.
    assert f'href="{reverse("admin:tasks_emergencytask_change", args=[task.pk])}"' in page


def test_it_shows_the_header_candidates_timeline_and_history(console_client, paramedic, db):
    near, far = located("NEAR-1", 1), located("FAR-1", 20)
    task = TaskFactory(request_id="inc-1", priority="critical", call_type="cardiac_arrest")
    EmergencyTask.objects.filter(pk=task.pk).update(
        created_at=timezone.now() - timedelta(minutes=12)
    )

    html = console_client.get(incident(task)).content.decode()

    assert "Critical" in html and "Cardiac arrest" in html
    assert 'data-target="missed"' in html  # 12 min against a critical arrest's target
    assert html.index('data-badge="NEAR-1"') < html.index('data-badge="FAR-1"')
    assert "(recommended)" in html and "ETA" in html
    assert 'data-step="created_at"' in html
    assert "Received (Pending)" in html
    assert "- -&gt; pending" not in html and "- -> pending" not in html
    assert near and far


def test_the_history_caption_says_what_happened(db, paramedic):
    task = put_on_task(paramedic)
    task_change_status(task_id=task.pk, to_status="in_progress", actor=paramedic.user)
    task_record_milestone(task_id=task.pk, milestone="on_scene", actor=paramedic.user)
    captions = [str(row) for row in TaskHistory.objects.filter(task=task)]
    assert captions == [
        "Received (Pending)",
        "Pending -> Assigned",
        "Assigned -> In progress",
        "On scene",
    ]


def test_assigning_uses_the_service_and_the_admin_log(console_client, supervisor, db):
    medic = located("PICK-1")
    task = TaskFactory()

    response = console_client.post(incident(task, "assign"), {"paramedic": str(medic.pk)})

    assert response.status_code == 302 and response["Location"] == incident(task)
    task.refresh_from_db()
    assert (task.status, task.paramedic_id) == (TaskStatus.ASSIGNED, medic.pk)
    assert task.history.last().actor == supervisor
    entry = LogEntry.objects.get(object_id=str(task.pk))
    assert "Assigned to" in entry.get_change_message()


def test_an_assigned_task_is_reassigned_in_one_step(console_client, supervisor, db):
    first, second = located("FIRST-1"), located("SECOND-1", 2)
    task = put_on_task(first)

    html = console_client.get(incident(task)).content.decode()
    assert "Reassign" in html and 'data-badge="FIRST-1"' not in html

    console_client.post(incident(task, "assign"), {"paramedic": str(second.pk)})

    task.refresh_from_db()
    first.refresh_from_db()
    assert task.paramedic_id == second.pk and task.status == TaskStatus.ASSIGNED
    assert first.status == "available"
    assert "Reassigned to" in LogEntry.objects.get(object_id=str(task.pk)).get_change_message()


def test_a_refused_reassignment_leaves_the_task_with_its_paramedic(console_client, db):
    first, busy = located("FIRST-2"), located("BUSY-2")
    put_on_task(busy)
    task = put_on_task(first)

    response = console_client.post(
        incident(task, "assign"), {"paramedic": str(busy.pk)}, follow=True
    )

    task.refresh_from_db()
    assert task.paramedic_id == first.pk and task.status == TaskStatus.ASSIGNED
    assert response.status_code == 200 and "not available" in response.content.decode().lower()


def test_cancel_needs_a_reason_and_frees_the_paramedic(console_client, paramedic, db):
    task = put_on_task(paramedic)

    refused = console_client.post(incident(task, "cancel"), {"reason": "  "}, follow=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.ASSIGNED and "required" in refused.content.decode()

    console_client.post(incident(task, "cancel"), {"reason": "Caller called back"})
    task.refresh_from_db()
    paramedic.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED and paramedic.status == "available"
    assert task.history.last().note == "Caller called back"
    assert "Cancelled: Caller called back" in LogEntry.objects.get().get_change_message()


def test_changing_the_priority_sets_the_plans_target(console_client, supervisor, db):
    task = TaskFactory(priority="routine", call_type="stroke")
    routine_target = task.target_minutes

    console_client.post(incident(task, "priority"), {"priority": "critical"})

    task.refresh_from_db()
    assert task.priority == "critical" and task.target_minutes < routine_target
    row = task.history.last()
    assert (row.from_status, row.to_status, row.actor) == ("pending", "pending", supervisor)
    assert str(row).startswith("Priority routine -> critical")
    bad = console_client.post(incident(task, "priority"), {"priority": "whenever"}, follow=True)
    assert bad.status_code == 200 and "not one of the available choices" in bad.content.decode()


def test_a_closed_task_has_no_actions(console_client, paramedic, db):
    task = put_on_task(paramedic)
    console_client.post(incident(task, "cancel"), {"reason": "duplicate call"})
    html = console_client.get(incident(task)).content.decode()
    assert 'id="actions"' not in html
    again = console_client.post(incident(task, "priority"), {"priority": "critical"}, follow=True)
    assert "no longer changes" in again.content.decode()


def test_the_map_shows_the_assignees_trail_since_the_assignment(console_client, paramedic, db):
    now = timezone.now()
    task = put_on_task(paramedic, assigned_ago=timedelta(minutes=10))
    fixes = [
        {"at": now - timedelta(minutes=m), "lat": 52.50 + m / 1000, "lon": 13.40}
        for m in (30, 8, 4, 1)  # the first lies before the assignment
    ]
    location_fixes_record(paramedic=paramedic, fixes=fixes, now=now)

    markers = console_client.get(incident(task)).context["map"]

    assert markers["trail"] == [[52.508, 13.4], [52.504, 13.4], [52.501, 13.4]]
    assert markers["assignee"]["badge"] == paramedic.badge_number
    assert markers["task"]["request_id"] == task.request_id


@pytest.mark.parametrize("action", ["assign", "cancel", "priority"])
def test_actions_answer_only_post(console_client, db, action):
    task = TaskFactory()
    assert console_client.get(incident(task, action)).status_code == 405


@pytest.mark.parametrize("action", ["", "assign", "cancel", "priority"])
def test_staff_without_the_group_may_not_use_the_incident_page(client, db, action):
    task = TaskFactory()
    client.force_login(UserFactory(username="clerk", is_staff=True))
    response = client.post(incident(task, action), {"reason": "x", "priority": "critical"})
    assert response.status_code == 403
    task.refresh_from_db()
    assert (task.status, task.priority) == (TaskStatus.PENDING, "urgent")


def test_actions_need_the_csrf_token(supervisor, db):
    task = TaskFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(supervisor)
    assert browser.post(incident(task, "cancel"), {"reason": "x"}).status_code == 403
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING


def test_an_unknown_task_is_a_404(console_client, db):
    missing = "00000000-0000-0000-0000-000000000000"
    assert console_client.get(f"/admin/tasks/emergencytask/{missing}/incident/").status_code == 404


def test_the_page_queries_do_not_grow_with_history_or_candidates(
    console_client, supervisor, django_assert_num_queries, db
):
    medics = [located(f"CYC-{n}", n / 10) for n in range(6)]  # found in the first radius

    def task_with_cycles(cycles: int) -> EmergencyTask:
        # Each assign (from this page) and decline adds two history rows.
        task = TaskFactory()
        for n in range(cycles):
            medic = medics[n % len(medics)]
            console_client.post(incident(task, "assign"), {"paramedic": str(medic.pk)})
            task_change_status(task_id=task.pk, to_status="pending", actor=medic.user)
        return task

    short, long = task_with_cycles(1), task_with_cycles(6)
    # Session, user, the user's groups, the task with its paramedic, call type and
    # creator, its history with actors and paramedics, its X-rays; the ranking: the
    # shift-table probe and one query per search radius until DISPATCH_POOL are found
    # (fewer here: all six radii); the user's and its groups' permissions (sidebar).
    for task in (short, long):
        ContentType.objects.clear_cache()
        with django_assert_num_queries(QUERIES):
            assert console_client.get(incident(task)).status_code == 200


QUERIES = 3 + 3 + 1 + 6 + 2
