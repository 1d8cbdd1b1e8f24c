"""Task endpoints: intake, listing, detail, assign, cancel, and the seed endpoints."""

from datetime import timedelta

import pytest
from django.utils import timezone

from paramedics.models import ParamedicStatus
from tasks.models import EmergencyTask, TaskHistory, TaskStatus
from tasks.services import task_assign, task_change_status
from tests.factories import ParamedicFactory, TaskFactory, put_on_task
from tests.helpers import client_for


def intake_body(**overrides):
    body = {
        "request_id": "ps-2026-0001",
        "patient_id": "p-778",
        "consultation_id": "c-991",
        "priority": "critical",
        "description": "Chest pain, 64 y/o",
        "address": "Unter den Linden 1, Berlin",
        "location": {"lat": 52.5170, "lon": 13.3889},
    }
    body.update(overrides)
    return body


@pytest.fixture
def service_client(service_user):
    return client_for(service_user)


class TestIntake:
    def test_it_creates_a_pending_task_with_history(self, service_client, service_user):
        response = service_client.post("/api/v1/tasks", intake_body())

        assert response.status_code == 201, response.content
        data = response.json()
        assert data["status"] == "pending"
        assert data["paramedic"] is None
        assert data["location"] == {"lat": 52.517, "lon": 13.3889}
        assert data["history"] == [
            {
                "from_status": None,
                "to_status": "pending",
                "milestone": None,
                "actor": service_user.username,
                "paramedic": None,
                "at": data["created_at"],
                "recorded_at": data["created_at"],
                "note": "received",
            }
        ]

    def test_the_same_request_id_returns_the_existing_task(self, service_client):
        first = service_client.post("/api/v1/tasks", intake_body())
        again = service_client.post("/api/v1/tasks/", intake_body(description="changed"))

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["description"] == "Chest pain, 64 y/o"
        assert EmergencyTask.objects.count() == 1
        assert TaskHistory.objects.count() == 1

    def test_another_callers_request_id_is_a_conflict(self, service_client, db):
        from tests.factories import UserFactory

        service_client.post("/api/v1/tasks", intake_body())
        other = client_for(UserFactory(username="svc-2", groups=["services"]))
        response = other.post("/api/v1/tasks", intake_body())
        assert response.status_code == 409
        assert response.json()["code"] == "duplicate_request_id"
        theirs = EmergencyTask.objects.get()
        assert theirs.patient_id not in response.content.decode()
        assert str(theirs.id) not in response.content.decode()

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"request_id": ""}, "request_id"),
            ({"request_id": "x" * 101}, "request_id"),
            ({"priority": "whenever"}, "priority"),
            ({"location": {"lat": 91, "lon": 0}}, "location"),
            ({"location": {"lat": 0}}, "location"),
            ({"location": None}, "location"),
            ({"patient_id": "abc\x00def"}, "patient_id"),
            ({"description": "x" * 5001}, "description"),
        ],
    )
    def test_it_rejects_invalid_input(self, service_client, overrides, field):
        response = service_client.post("/api/v1/tasks", intake_body(**overrides))
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "invalid"
        assert field in response.json()["errors"]
        assert not EmergencyTask.objects.exists()


class TestListAndDetail:
    def test_it_filters_tasks(self, supervisor_client, paramedic):
        assigned = put_on_task(paramedic, priority="critical")
        TaskFactory(priority="routine")
        cancelled = TaskFactory(priority="urgent")
        supervisor_client.post(f"/api/v1/tasks/{cancelled.id}/cancel", {"reason": "dup call"})

        def ids(query):
            response = supervisor_client.get(f"/api/v1/tasks?{query}")
            assert response.status_code == 200, response.content
            return {t["id"] for t in response.json()["results"]}

        assert ids("status=assigned") == {str(assigned.id)}
        assert len(ids("status=pending&status=cancelled")) == 2
        assert ids("priority=critical") == {str(assigned.id)}
        assert ids(f"paramedic={paramedic.id}") == {str(assigned.id)}
        assert len(ids("created_after=2000-01-01T00:00:00Z")) == 3
        assert ids("created_before=2000-01-01T00:00:00Z") == set()

    def test_updated_after_catches_a_device_up(self, supervisor_client, paramedic):
        task = put_on_task(paramedic)
        TaskFactory()
        since = timezone.now()
        EmergencyTask.objects.filter(pk=task.pk).update(updated_at=since + timedelta(seconds=1))
        response = supervisor_client.get(
            "/api/v1/tasks", {"updated_after": since.isoformat(), "ordering": "updated_at"}
        )
        assert [t["id"] for t in response.json()["results"]] == [str(task.id)]

    def test_it_rejects_bad_filter_values(self, supervisor_client, db):
        for query in ("status=nope", "updated_after=yesterday", "paramedic=not-a-uuid"):
            response = supervisor_client.get(f"/api/v1/tasks?{query}")
            assert response.status_code == 400, query
            assert response.json()["code"] == "invalid"

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
            "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
            "2026-01-01T00:00:00+25:00",
            "99999-01-01T00:00:00Z",
        ],
    )
    @pytest.mark.parametrize("name", ["created_after", "created_before", "updated_after"])
    def test_times_outside_utc_are_invalid_input(self, supervisor_client, paramedic, name, value):
        put_on_task(paramedic)
        response = supervisor_client.get("/api/v1/tasks", {name: value})
        assert response.status_code == 400, response.content
        assert response.json()["errors"][name][0]["code"] == "invalid"
        if name == "updated_after":
            own = client_for(paramedic.user).get(
                f"/api/v1/paramedics/{paramedic.id}/tasks", {name: value}
            )
            assert own.status_code == 400, own.content

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59+00:00",
            "0465-12-21T06:28:39.5-19:27",  # an offset PostgreSQL refuses: sent as UTC
        ],
    )
    def test_the_ends_of_utc_are_valid(self, supervisor_client, db, value):
        TaskFactory()
        for name in ("created_after", "created_before", "updated_after"):
            assert supervisor_client.get("/api/v1/tasks", {name: value}).status_code == 200

    def test_list_query_count_is_constant(self, supervisor_client, django_assert_num_queries, db):
        # The JWT user (with its paramedic), its groups, the page (no COUNT(*): a page
        # that is not full is the count); a full page adds the COUNT(*).
        TaskFactory.create_batch(2)
        with django_assert_num_queries(3):
            supervisor_client.get("/api/v1/tasks")
        TaskFactory.create_batch(40)
        with django_assert_num_queries(3):
            response = supervisor_client.get("/api/v1/tasks?page_size=100")
        assert response.json()["count"] == 42
        # A full first page: its rows (one more, to tell it is full) and COUNT(*).
        with django_assert_num_queries(4):
            response = supervisor_client.get("/api/v1/tasks?page_size=10")
        assert response.json()["count"] == 42

    def test_detail_has_history_with_constant_queries(
        self, supervisor_client, paramedic, django_assert_num_queries
    ):
        task = put_on_task(paramedic)
        for status in ("in_progress", "completed"):
            client_for(paramedic.user).post(
                f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}", {"status": status}
            )
        # The JWT user (with its paramedic), its groups, the task, its history with actors.
        with django_assert_num_queries(4):
            response = supervisor_client.get(f"/api/v1/tasks/{task.id}")
        history = response.json()["history"]
        assert [h["to_status"] for h in history] == [
            "pending",
            "assigned",
            "in_progress",
            "completed",
        ]
        assert history[2]["actor"] == paramedic.badge_number

    @pytest.mark.parametrize(
        "path", ["/api/v1/tasks/00000000-0000-0000-0000-000000000000", "/api/v1/tasks/nope"]
    )
    def test_unknown_and_malformed_ids_are_404(self, supervisor_client, db, path):
        response = supervisor_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


class TestAssign:
    def test_it_assigns_a_chosen_paramedic(self, supervisor_client, supervisor, paramedic):
        task = TaskFactory()
        response = supervisor_client.post(
            f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(paramedic.id), "note": "closest"}
        )
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["status"] == "assigned"
        assert data["paramedic"] == str(paramedic.id)
        assert data["assigned_at"]
        assert data["history"][-1]["actor"] == supervisor.username
        assert data["history"][-1]["note"] == "closest"
        profile = supervisor_client.get(f"/api/v1/paramedics/{paramedic.id}").json()
        assert profile["status"] == "on_task"
        assert profile["current_task"] == str(task.id)

    def test_an_unavailable_paramedic_is_409(self, supervisor_client, paramedic):
        put_on_task(paramedic)
        task = TaskFactory()
        response = supervisor_client.post(
            f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(paramedic.id)}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "paramedic_unavailable"

    def test_an_unknown_paramedic_is_409(self, supervisor_client, db):
        task = TaskFactory()
        response = supervisor_client.post(
            f"/api/v1/tasks/{task.id}/assign", {"paramedic": "00000000-0000-0000-0000-000000000000"}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "paramedic_not_found"

    def test_assigning_a_non_pending_task_is_409(self, supervisor_client, paramedic):
        task = put_on_task(paramedic)
        other = ParamedicFactory()
        response = supervisor_client.post(
            f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(other.id)}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        other.refresh_from_db()
        assert other.status == ParamedicStatus.AVAILABLE


class TestCancel:
    def test_creating_service_cancels_and_frees_the_paramedic(self, service_user, paramedic):
        task = put_on_task(paramedic, created_by=service_user)
        response = client_for(service_user).post(
            f"/api/v1/tasks/{task.id}/cancel", {"reason": "patient went to hospital"}
        )
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["status"] == "cancelled"
        assert data["cancelled_at"]
        assert data["history"][-1]["note"] == "patient went to hospital"
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.AVAILABLE
        assert paramedic.current_task is None

    def test_a_reason_is_required(self, supervisor_client, db):
        task = TaskFactory()
        response = supervisor_client.post(f"/api/v1/tasks/{task.id}/cancel", {})
        assert response.status_code == 400
        assert response.json()["errors"]["reason"][0]["code"] == "required"

    def test_cancelling_a_final_task_is_409(self, supervisor_client, db):
        task = TaskFactory()
        supervisor_client.post(f"/api/v1/tasks/{task.id}/cancel", {"reason": "a"})
        response = supervisor_client.post(f"/api/v1/tasks/{task.id}/cancel", {"reason": "b"})
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"


class TestParamedicTasks:
    def test_the_paramedic_works_its_task_to_the_end(self, paramedic_client, paramedic):
        task = put_on_task(paramedic)
        url = f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}"

        started = paramedic_client.post(url, {"status": "in_progress", "note": "on scene"})
        assert started.status_code == 200, started.content
        assert started.json()["started_at"]
        done = paramedic_client.post(url + "/", {"status": "completed"})
        assert done.status_code == 200
        assert done.json()["completed_at"]
        paramedic.refresh_from_db()
        assert paramedic.status == ParamedicStatus.AVAILABLE

    def test_declining_returns_the_task_to_dispatch(self, paramedic_client, paramedic):
        task = put_on_task(paramedic)
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}",
            {"status": "pending", "note": "vehicle breakdown"},
        )
        assert response.status_code == 200
        assert response.json()["status"] == "pending"
        assert response.json()["paramedic"] is None
        listing = paramedic_client.get(f"/api/v1/paramedics/{paramedic.id}/tasks").json()
        assert listing["count"] == 0
        # It has left the paramedic's reach altogether.
        assert paramedic_client.get(f"/api/v1/tasks/{task.id}").status_code == 404

    def test_a_move_the_state_machine_refuses_is_409(self, paramedic_client, paramedic):
        task = put_on_task(paramedic)  # assigned: it cannot be completed before it starts
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}", {"status": "completed"}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        task.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED

    @pytest.mark.parametrize("to_status", ["assigned", "cancelled", "done"])
    def test_a_status_a_paramedic_never_reports_is_400(
        self, paramedic_client, paramedic, to_status
    ):
        """Only in_progress, completed and pending are accepted (as the schema says);
        assigning and cancelling have their own endpoints."""
        task = put_on_task(paramedic)
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{task.id}", {"status": to_status}
        )
        assert response.status_code == 400
        assert response.json()["errors"]["status"][0]["code"] == "invalid_choice"
        task.refresh_from_db()
        assert task.status == TaskStatus.ASSIGNED

    def test_another_paramedics_task_is_404(self, paramedic_client, paramedic, other_paramedic):
        theirs = put_on_task(other_paramedic)
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/tasks/{theirs.id}", {"status": "in_progress"}
        )
        assert response.status_code == 404
        theirs.refresh_from_db()
        assert theirs.status == TaskStatus.ASSIGNED

    def test_it_lists_own_tasks_with_status_filter(
        self, paramedic_client, paramedic, django_assert_num_queries
    ):
        first = put_on_task(paramedic)
        url = f"/api/v1/paramedics/{paramedic.id}/tasks/{first.id}"
        paramedic_client.post(url, {"status": "in_progress"})
        paramedic_client.post(url, {"status": "completed"})
        current = put_on_task(paramedic)

        # The JWT user with its paramedic (also the scope: no lookup of its own
        # profile, no role query for a paramedic), the page (not full: no COUNT(*)).
        with django_assert_num_queries(2):
            response = paramedic_client.get(
                f"/api/v1/paramedics/{paramedic.id}/tasks?status=assigned"
            )
        assert [t["id"] for t in response.json()["results"]] == [str(current.id)]
        everything = paramedic_client.get(f"/api/v1/paramedics/{paramedic.id}/tasks").json()
        assert everything["count"] == 2


class TestOfflineCatchUp:
    """A device back from a dead zone asks what changed since it last heard (design §17)."""

    def url(self, paramedic):
        return f"/api/v1/paramedics/{paramedic.id}/tasks"

    def test_tasks_that_left_the_list_are_listed_under_removed(
        self, paramedic, other_paramedic, supervisor
    ):
        declined = put_on_task(paramedic, request_id="declined")
        reassigned = put_on_task(other_paramedic, request_id="other")  # never A's
        since = timezone.now()
        task_change_status(task_id=declined.pk, to_status="pending", actor=paramedic.user)
        # Reassigned to B meanwhile: still gone from A's list.
        task_change_status(task_id=reassigned.pk, to_status="pending", actor=other_paramedic.user)
        task_assign(task_id=declined.pk, actor=supervisor, paramedic_id=other_paramedic.pk)
        kept = put_on_task(paramedic, request_id="kept")
        cancelled = task_change_status(
            task_id=kept.pk, to_status="cancelled", actor=supervisor,
            allowed_moves=frozenset({"cancel"}),
        )  # fmt: skip

        data = (
            client_for(paramedic.user)
            .get(self.url(paramedic), {"updated_after": since.isoformat()})
            .json()
        )

        assert data["removed"] == [str(declined.id)]
        assert [t["id"] for t in data["results"]] == [str(cancelled.id)]
        assert data["results"][0]["status"] == "cancelled"  # still its own: shown, not removed

    def test_removed_is_empty_without_updated_after_and_before_the_change(
        self, paramedic, supervisor
    ):
        task = put_on_task(paramedic)
        task_change_status(task_id=task.pk, to_status="pending", actor=paramedic.user)
        later = timezone.now()
        client = client_for(paramedic.user)
        assert client.get(self.url(paramedic)).json()["removed"] == []
        assert (
            client.get(self.url(paramedic), {"updated_after": later.isoformat()}).json()["removed"]
            == []
        )

    def test_the_catch_up_costs_a_fixed_number_of_queries(
        self, paramedic, supervisor, django_assert_num_queries
    ):
        for i in range(3):
            task = put_on_task(paramedic, request_id=f"gone-{i}")
            task_change_status(task_id=task.pk, to_status="pending", actor=paramedic.user)
        client = client_for(paramedic.user)
        since = (timezone.now() - timedelta(hours=1)).isoformat()
        # The JWT user with its paramedic (also the scope), the page, the removed ids.
        with django_assert_num_queries(3):
            data = client.get(self.url(paramedic), {"updated_after": since}).json()
        assert len(data["removed"]) == 3
