"""Lists never leak: every page, under every filter, holds only the caller's rows."""

import pytest

from tasks.models import EmergencyTask, TaskStatus
from tasks.services import task_cancel, task_change_status
from tests.factories import TaskFactory, put_on_task
from tests.helpers import API, Caller


def _all_pages(client, url, query) -> tuple[int, set[str]]:
    """Walk every page one row at a time; return the reported count and every id."""
    ids, page = set(), 1
    while True:
        response = client.get(url, {**query, "page_size": 1, "page": page})
        assert response.status_code == 200, response.content
        data = response.json()
        ids |= {row["id"] for row in data["results"]}
        if not data["next"]:
            return data["count"], ids
        page += 1


class TestListsNeverLeak:
    @pytest.fixture
    def crowded(self, world, service_user, other_service, supervisor):
        """The world plus tasks in every state, of A's and of others'.

        A: `task` completed, then a new one from `other_service` (assigned).
        B: `other_task` completed, then a new one (assigned).
        Others: a cancelled one, two pending ones (one from the supervisor), and
        one `service` task that `spare` declined (pending again, nobody's).
        """
        a, b = world.paramedic, world.other_paramedic
        for who, task in ((a, world.task), (b, world.other_task)):
            for status in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
                task_change_status(task_id=task.pk, to_status=status, actor=who.user)
        put_on_task(a, created_by=other_service)
        put_on_task(b, created_by=other_service)
        cancelled = TaskFactory(created_by=other_service)
        task_cancel(task_id=cancelled.pk, actor=other_service, reason="called back")
        TaskFactory(created_by=other_service)
        TaskFactory(created_by=supervisor)
        declined = put_on_task(world.spare, created_by=service_user)
        task_change_status(
            task_id=declined.pk, to_status=TaskStatus.PENDING, actor=world.spare.user
        )
        world.xray, world.other_xray  # noqa: B018 - made on first use
        return world

    @staticmethod
    def _ids_of(**lookup) -> set[str]:
        return {
            str(pk) for pk in EmergencyTask.objects.filter(**lookup).values_list("pk", flat=True)
        }

    def test_paramedic_task_list_has_only_own_rows_under_any_filter(self, crowded):
        w = crowded
        own = self._ids_of(paramedic=w.paramedic)
        assert len(own) == 2
        assert EmergencyTask.objects.count() == 9
        client = Caller(w.paramedic.user)
        url = f"{API}/paramedics/{w.paramedic.id}/tasks"
        for query in (
            {"status": "assigned"},
            {"status": "completed"},
            {"status": ["pending", "cancelled", "in_progress"]},
            {"updated_after": "2000-01-01T00:00:00Z"},
            {"ordering": "-priority"},
        ):
            count, ids = _all_pages(client, url, query)
            assert ids <= own, query
            assert count == len(ids), query
        assert _all_pages(client, url, {"status": list(TaskStatus.values)}) == (2, own)
        # `paramedic` is not a filter here: refused as invalid input, never ignored.
        response = client.get(url, {"paramedic": str(w.other_paramedic.id)})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert "paramedic" in response.json()["errors"]
        # B's list does not exist for A.
        other = client.get(f"{API}/paramedics/{w.other_paramedic.id}/tasks")
        assert other.status_code == 404

    def test_paramedic_xray_list_has_only_own_rows(self, crowded):
        w = crowded
        client = Caller(w.paramedic.user)
        url = f"{API}/paramedics/{w.paramedic.id}/xrays"
        assert _all_pages(client, url, {}) == (1, {str(w.xray.id)})
        # Not filters here: refused as invalid input, never ignored.
        for query in ({"paramedic": str(w.other_paramedic.id)}, {"task": str(w.other_task.id)}):
            response = client.get(url, query)
            assert response.status_code == 400, query
            assert str(w.other_xray.id) not in response.content.decode()
        for path in (f"/paramedics/{w.other_paramedic.id}/xrays", f"/xrays/{w.other_xray.id}"):
            response = client.get(API + path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"

    def test_service_task_list_never_shows_another_services_tasks(self, crowded, service_user):
        w = crowded
        mine = self._ids_of(created_by=service_user)
        assert len(mine) == 3  # A's completed task, `pending`, the declined one
        client = Caller(service_user)
        for query in (
            {"paramedic": str(w.other_paramedic.id)},
            {"paramedic": str(w.paramedic.id)},
            {"status": "completed"},
            {"status": ["assigned", "cancelled", "in_progress"]},
            {"priority": ["critical", "urgent", "routine"]},
            {"created_after": "2000-01-01T00:00:00Z", "updated_after": "2000-01-01T00:00:00Z"},
            {"ordering": "-updated_at"},
        ):
            count, ids = _all_pages(client, f"{API}/tasks", query)
            assert ids <= mine, query
            assert count == len(ids), query
        assert _all_pages(client, f"{API}/tasks", {}) == (3, mine)
        # other_task, A's and B's new ones, the cancelled and a pending one.
        theirs = self._ids_of(created_by=w.users["other_service"])
        assert _all_pages(Caller(w.users["other_service"]), f"{API}/tasks", {}) == (5, theirs)

    @pytest.mark.parametrize("role", ["own_paramedic", "doctor", "service"])
    @pytest.mark.parametrize(
        "query", [{}, {"search": "B-2"}, {"status": "on_task"}, {"page_size": 200}]
    )
    def test_only_supervisors_list_the_roster(self, users, other_paramedic, role, query):
        response = Caller(users[role]).get(f"{API}/paramedics", query)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert other_paramedic.badge_number not in response.content.decode()
