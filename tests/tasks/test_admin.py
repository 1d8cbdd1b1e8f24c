"""Tasks in the supervisor console (design §9): filters, history inline, actions.

State never changes in the admin's own forms: the assign and cancel actions go
through tasks.services, and the change form shows status without editing it.
"""

from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from paramedics.models import ParamedicStatus
from tasks.models import EmergencyTask, TaskStatus
from tasks.services import task_assign, task_change_status
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task

CHANGELIST = reverse("admin:tasks_emergencytask_changelist")
ADD = reverse("admin:tasks_emergencytask_add")


def change_url(task) -> str:
    return reverse("admin:tasks_emergencytask_change", args=[task.pk])


def located(**fields):
    """An available paramedic with a fresh fix, so dispatch can rank it."""
    return ParamedicFactory(last_location_at=timezone.now(), **fields)


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _run_action(client, action: str, tasks, **extra):
    data = {"action": action, "_selected_action": [t.pk for t in tasks], **extra}
    return client.post(CHANGELIST, data)


class TestChangelist:
    def test_it_lists_tasks_with_status_and_priority_filters(self, console_client, paramedic):
        assigned = put_on_task(paramedic, request_id="req-assigned", priority="critical")
        TaskFactory(request_id="req-pending", priority="critical")
        TaskFactory(request_id="req-routine", priority="routine")

        response = console_client.get(CHANGELIST)
        assert response.status_code == 200
        html = response.content.decode()
        assert all(r in html for r in ("req-assigned", "req-pending", "req-routine"))
        filter_titles = {spec.title for spec in response.context["cl"].filter_specs}
        assert {"status", "priority"} <= filter_titles

        response = console_client.get(
            CHANGELIST, {"status__exact": "assigned", "priority__exact": "critical"}
        )
        assert response.status_code == 200
        assert [t.pk for t in response.context["cl"].result_list] == [assigned.pk]

        response = console_client.get(CHANGELIST, {"priority__exact": "routine"})
        assert [t.request_id for t in response.context["cl"].result_list] == ["req-routine"]

    def test_query_count_does_not_grow_with_rows(
        self, console_client, django_assert_num_queries, db
    ):
        def add_tasks(n: int) -> None:
            # A mix of pending tasks and tasks with a paramedic (the FK column).
            for i in range(n):
                if i % 3 == 0:
                    put_on_task(ParamedicFactory())
                else:
                    TaskFactory()

        # Session, user, its groups, the call types and the paramedics of the filters,
        # COUNT(*) filtered and unfiltered, the user's and its groups' permissions, the
        # page with paramedics joined, the date hierarchy's first/last and its days;
        # SAVEPOINT and RELEASE around the list (the test runs in a transaction).
        add_tasks(3)
        with django_assert_num_queries(12 + 2):
            assert console_client.get(CHANGELIST).status_code == 200
        add_tasks(27)
        with django_assert_num_queries(12 + 2):
            response = console_client.get(CHANGELIST)
        assert response.status_code == 200
        assert response.context["cl"].result_count == 30


class TestChangePage:
    def test_it_shows_history_inline_read_only(self, console_client, supervisor, paramedic):
        task = put_on_task(paramedic, actor=supervisor)
        task_change_status(
            task_id=task.pk, to_status="in_progress", actor=paramedic.user, note="on scene"
        )

        response = console_client.get(change_url(task))
        assert response.status_code == 200
        html = response.content.decode()
        (history,) = response.context["inline_admin_formsets"]
        assert history.opts.model._meta.model_name == "taskhistory"
        assert not history.has_add_permission
        assert not history.has_change_permission
        assert not history.has_delete_permission
        assert len(history.formset.forms) == 3  # received, assigned, started
        assert "on scene" in html
        assert 'name="history-0-note"' not in html
        assert 'name="history-2-to_status"' not in html

    def test_status_is_shown_but_not_editable(self, console_client, paramedic):
        task = put_on_task(paramedic)
        response = console_client.get(change_url(task))
        form = response.context["adminform"].form
        for field in ("status", "paramedic", "created_by", "assigned_at", "completed_at"):
            assert field not in form.fields, field
        assert 'name="status"' not in response.content.decode()

        # A forged POST carrying state fields changes only the editable ones.
        data = {
            "priority": "critical",
            "patient_id": task.patient_id,
            "consultation_id": task.consultation_id,
            "description": "updated by supervisor",
            "address": task.address,
            "lat": task.lat,
            "lon": task.lon,
            "status": "completed",
            "paramedic": "",
            "completed_at_0": "2001-01-01",
            "completed_at_1": "00:00:00",
            "history-TOTAL_FORMS": "2",
            "history-INITIAL_FORMS": "2",
            "history-MIN_NUM_FORMS": "0",
            "history-MAX_NUM_FORMS": "1000",
        }
        response = console_client.post(change_url(task), data)
        assert response.status_code == 302, response.content.decode()[:2000]
        task.refresh_from_db()
        assert task.description == "updated by supervisor"
        assert task.priority == "critical"
        assert task.status == TaskStatus.ASSIGNED
        assert task.paramedic_id == paramedic.pk
        assert task.completed_at is None
        assert task.history.count() == 2

    def test_change_page_query_count_does_not_grow_with_history(
        self, console_client, supervisor, django_assert_num_queries, db
    ):
        def task_with_cycles(cycles: int) -> EmergencyTask:
            # Each assign + decline adds two history rows (new actor, new paramedic).
            task = TaskFactory()
            for _ in range(cycles):
                medic = ParamedicFactory()
                task_assign(task_id=task.pk, actor=supervisor, paramedic_id=medic.pk)
                task_change_status(task_id=task.pk, to_status="pending", actor=medic.user)
            return task

        short, long = task_with_cycles(1), task_with_cycles(10)
        # Session, user, the task, the user's groups, the history with its actors and
        # paramedics, the user's and its groups' permissions, the content type (admin
        # log link; cached per process, so cleared first), the task's creator and its
        # call type.
        for task in (short, long):
            ContentType.objects.clear_cache()
            with django_assert_num_queries(10):
                assert console_client.get(change_url(task)).status_code == 200


class TestAssignAction:
    def test_first_post_shows_the_intermediate_form(self, console_client, paramedic):
        task = TaskFactory(request_id="req-to-assign")
        busy = ParamedicFactory(badge_number="B-BUSY")
        put_on_task(busy)

        response = _run_action(console_client, "assign_selected", [task])

        assert response.status_code == 200
        assert "admin/tasks/action_form.html" in [t.name for t in response.templates]
        html = response.content.decode()
        assert "req-to-assign" in html
        assert 'name="apply"' in html
        choices = set(response.context["form"].fields["paramedic"].queryset)
        assert paramedic in choices
        assert busy not in choices  # only available paramedics are offered
        task.refresh_from_db()
        assert task.status == TaskStatus.PENDING

    def test_empty_choice_assigns_the_nearest_available(self, console_client, supervisor):
        task = TaskFactory(lat=52.52, lon=13.405)
        far = located(badge_number="B-FAR", last_lat=52.60, last_lon=13.50)
        near = located(badge_number="B-NEAR", last_lat=52.521, last_lon=13.406)
        ParamedicFactory(badge_number="B-NOFIX")  # available but never located

        response = _run_action(
            console_client, "assign_selected", [task], apply="Assign", paramedic=""
        )

        assert response.status_code == 302
        task.refresh_from_db()
        near.refresh_from_db()
        far.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED
        assert task.paramedic_id == near.pk
        assert (near.status, near.current_task_id) == (ParamedicStatus.ON_TASK, task.pk)
        assert far.status == ParamedicStatus.AVAILABLE
        last = task.history.last()
        assert (last.to_status, last.actor) == (TaskStatus.ASSIGNED, supervisor)
        assert _messages(response) == [(messages.INFO, f"{task.request_id}: assigned.")]

    def test_a_chosen_paramedic_is_assigned(self, console_client):
        task = TaskFactory(lat=52.52, lon=13.405)
        located(badge_number="B-NEAR", last_lat=52.521, last_lon=13.406)
        chosen = located(badge_number="B-FAR", last_lat=52.60, last_lon=13.50)

        response = _run_action(
            console_client, "assign_selected", [task], apply="Assign", paramedic=chosen.pk
        )

        assert response.status_code == 302
        task.refresh_from_db()
        chosen.refresh_from_db()
        assert task.paramedic_id == chosen.pk
        assert chosen.status == ParamedicStatus.ON_TASK

    def test_a_busy_paramedic_is_a_form_error(self, console_client, paramedic, other_paramedic):
        task = TaskFactory()
        put_on_task(other_paramedic)

        response = _run_action(
            console_client,
            "assign_selected",
            [task],
            apply="Assign",
            paramedic=other_paramedic.pk,
        )

        assert response.status_code == 200
        assert "paramedic" in response.context["form"].errors
        task.refresh_from_db()
        assert task.status == TaskStatus.PENDING

    def test_an_assigned_task_gives_a_warning_not_an_error(
        self, console_client, paramedic, other_paramedic
    ):
        task = put_on_task(paramedic)

        response = _run_action(
            console_client,
            "assign_selected",
            [task],
            apply="Assign",
            paramedic=other_paramedic.pk,
        )

        assert response.status_code == 302
        warnings = [text for level, text in _messages(response) if level == messages.WARNING]
        assert len(warnings) == 1
        assert warnings[0].startswith(f"{task.request_id}:")
        task.refresh_from_db()
        other_paramedic.refresh_from_db()
        assert task.paramedic_id == paramedic.pk
        assert other_paramedic.status == ParamedicStatus.AVAILABLE

    def test_one_paramedic_for_two_tasks_assigns_one_and_warns_once(
        self, console_client, paramedic
    ):
        first, second = TaskFactory(), TaskFactory()

        response = _run_action(
            console_client,
            "assign_selected",
            [first, second],
            apply="Assign",
            paramedic=paramedic.pk,
        )

        assert response.status_code == 302
        statuses = sorted(
            EmergencyTask.objects.filter(pk__in=[first.pk, second.pk]).values_list(
                "status", flat=True
            )
        )
        assert statuses == [TaskStatus.ASSIGNED, TaskStatus.PENDING]
        levels = [level for level, _ in _messages(response)]
        assert levels.count(messages.WARNING) == 1

    def test_no_candidate_is_a_warning(self, console_client, paramedic):
        task = TaskFactory()  # `paramedic` is available but has no location

        response = _run_action(
            console_client, "assign_selected", [task], apply="Assign", paramedic=""
        )

        assert response.status_code == 302
        assert [level for level, _ in _messages(response)] == [messages.WARNING]
        task.refresh_from_db()
        assert task.status == TaskStatus.PENDING


class TestCancelAction:
    def test_it_cancels_and_frees_the_paramedic(self, console_client, supervisor, paramedic):
        task = put_on_task(paramedic)

        form = _run_action(console_client, "cancel_selected", [task])
        assert form.status_code == 200  # asks for the reason first
        assert "reason" in form.content.decode()
        task.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED
        response = _run_action(
            console_client,
            "cancel_selected",
            [task],
            apply="1",
            reason="cancelled by supervisor",
        )

        assert response.status_code == 302
        task.refresh_from_db()
        paramedic.refresh_from_db()
        assert task.status == TaskStatus.CANCELLED
        assert task.cancelled_at is not None
        assert (paramedic.status, paramedic.current_task_id) == (ParamedicStatus.AVAILABLE, None)
        last = task.history.last()
        assert (last.from_status, last.to_status) == (TaskStatus.ASSIGNED, TaskStatus.CANCELLED)
        assert last.actor == supervisor
        assert last.note == "cancelled by supervisor"
        # The admin log records who did it.
        entry = LogEntry.objects.get(object_id=str(task.pk))
        assert entry.user == supervisor
        assert "Cancelled: cancelled by supervisor" in entry.get_change_message()

    def test_a_final_task_gives_a_warning(self, console_client, paramedic):
        task = put_on_task(paramedic)
        task_change_status(task_id=task.pk, to_status="in_progress", actor=paramedic.user)
        task_change_status(task_id=task.pk, to_status="completed", actor=paramedic.user)

        response = _run_action(
            console_client, "cancel_selected", [task], apply="1", reason="duplicate call"
        )

        assert response.status_code == 302
        assert [level for level, _ in _messages(response)] == [messages.WARNING]
        task.refresh_from_db()
        assert task.status == TaskStatus.COMPLETED


class TestAccess:
    def test_staff_without_group_is_refused(self, client, db, paramedic):
        task = put_on_task(paramedic)
        client.force_login(UserFactory(username="clerk", is_staff=True))
        assert client.get(CHANGELIST).status_code == 403
        assert client.get(change_url(task)).status_code == 403
        response = _run_action(client, "cancel_selected", [task])
        assert response.status_code == 403
        task.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED

    def test_tasks_are_not_added_in_the_admin(self, console_client):
        assert console_client.get(ADD).status_code == 403
        response = console_client.post(
            ADD, {"priority": "urgent", "patient_id": "p-1", "lat": 1, "lon": 1}
        )
        assert response.status_code == 403
        assert not EmergencyTask.objects.exists()

    def test_tasks_are_not_deleted_in_the_admin(self, console_client, db):
        task = TaskFactory()
        response = console_client.get(CHANGELIST)
        assert "delete_selected" not in dict(
            response.context["action_form"].fields["action"].choices
        )
        url = reverse("admin:tasks_emergencytask_delete", args=[task.pk])
        assert console_client.get(url).status_code == 403
        assert EmergencyTask.objects.filter(pk=task.pk).exists()
