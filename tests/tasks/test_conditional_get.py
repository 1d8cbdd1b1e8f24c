"""Conditional GET (design §12): ETag on a task, a paramedic and its task list.

An unchanged resource answers 304 with no body after the same authorization as
the 200; any change that alters the response gives a new ETag.
"""

import pytest
from django.utils import timezone

from paramedics.services import paramedic_update, station_update
from tasks.services import task_change_status, task_record_milestone, task_store_patient_details
from tests.factories import ParamedicFactory, StationFactory, put_on_task
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


def etag_of(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "private, no-cache"
    return response["ETag"]


def revalidate(client, url, etag, **params):
    return client.get(url, params, HTTP_IF_NONE_MATCH=etag)


class TestTask:
    def test_unchanged_is_304_without_a_body(self, paramedic, django_assert_num_queries):
        task = put_on_task(paramedic)
        client = client_for(paramedic.user)
        url = f"/api/v1/tasks/{task.id}"
        etag = etag_of(client, url)

        # The JWT user with its paramedic, its roles (the permission check, as on the
        # 200 path), then one narrow read of the task: no history, no body.
        with django_assert_num_queries(3):
            response = revalidate(client, url, etag)
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == etag
        # Weak and listed forms match too (RFC 9110 weak comparison for GET).
        assert revalidate(client, url, f'"other", W/{etag}').status_code == 304
        assert revalidate(client, url, '"other"').status_code == 200

    @pytest.mark.parametrize(
        "change",
        [
            lambda task, p: task_change_status(
                task_id=task.pk, to_status="in_progress", actor=p.user
            ),
            lambda task, p: task_record_milestone(
                task_id=task.pk, paramedic_id=p.pk, milestone="acknowledged", actor=p.user
            ),
            lambda task, p: task_store_patient_details(task_id=task.pk, details={"age": 64}),
        ],
        ids=["status", "history", "patient_details"],
    )
    def test_a_change_gives_a_new_etag(self, paramedic, change):
        task = put_on_task(paramedic)
        client = client_for(paramedic.user)
        url = f"/api/v1/tasks/{task.id}"
        etag = etag_of(client, url)
        change(task, paramedic)
        response = revalidate(client, url, etag)
        assert response.status_code == 200
        assert response["ETag"] != etag

    def test_the_304_path_keeps_the_authorization(self, paramedic, other_paramedic):
        task = put_on_task(paramedic)
        etag = etag_of(client_for(paramedic.user), f"/api/v1/tasks/{task.id}")
        response = revalidate(client_for(other_paramedic.user), f"/api/v1/tasks/{task.id}", etag)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        anonymous = revalidate(client_for(None), f"/api/v1/tasks/{task.id}", etag)
        assert anonymous.status_code == 401

    def test_it_differs_between_viewers_who_see_different_bodies(
        self, paramedic, supervisor, service_user
    ):
        task = put_on_task(paramedic, created_by=service_user)
        task_store_patient_details(task_id=task.pk, details={"age": 64})
        url = f"/api/v1/tasks/{task.id}"
        service_etag = etag_of(client_for(service_user), url)
        assert revalidate(client_for(supervisor), url, service_etag).status_code == 200

    @pytest.mark.parametrize("header", ['"x"', "", "*", "W/"])
    @pytest.mark.parametrize("path", ["/api/v1/tasks/nope", "/api/v1/paramedics/0"])
    def test_odd_ids_and_headers_are_still_a_404(self, paramedic, path, header):
        response = revalidate(client_for(paramedic.user), path, header)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize("header", ["", " ", "W/", '"unterminated', ",,"])
    def test_an_odd_header_is_a_200(self, paramedic, header):
        task = put_on_task(paramedic)
        client = client_for(paramedic.user)
        for url in (f"/api/v1/tasks/{task.id}", f"/api/v1/paramedics/{paramedic.id}"):
            assert revalidate(client, url, header).status_code == 200


class TestParamedic:
    def test_unchanged_is_304_and_changes_give_new_etags(self, paramedic):
        client = client_for(paramedic.user)
        url = f"/api/v1/paramedics/{paramedic.id}"
        etag = etag_of(client, url)
        assert revalidate(client, url, etag).status_code == 304

        paramedic_update(paramedic=paramedic, changes={"phone": "+4915112345678"})
        response = revalidate(client, url, etag)
        assert response.status_code == 200
        assert response.json()["phone"] == "+4915112345678"
        etag = response["ETag"]

        # A change held on the login user (the name) is the profile's too.
        paramedic_update(paramedic=paramedic, changes={"first_name": "Renamed"})
        response = revalidate(client, url, etag)
        assert response.status_code == 200
        assert response.json()["first_name"] == "Renamed"
        etag = response["ETag"]

        put_on_task(paramedic)  # on_task and current task
        assert revalidate(client, url, etag).status_code == 200

    def test_renaming_its_station_gives_a_new_etag(self, paramedic):
        station = StationFactory(code="OLD-CODE")
        paramedic_update(paramedic=paramedic, changes={"base_station": "OLD-CODE"})
        client = client_for(paramedic.user)
        url = f"/api/v1/paramedics/{paramedic.id}"
        etag = etag_of(client, url)

        station_update(station=station, changes={"code": "NEW-CODE"})
        response = revalidate(client, url, etag)
        assert response.status_code == 200
        assert response.json()["base_station"] == "NEW-CODE"

    def test_another_paramedic_gets_404_not_304(self, paramedic, other_paramedic):
        url = f"/api/v1/paramedics/{paramedic.id}"
        etag = etag_of(client_for(paramedic.user), url)
        assert revalidate(client_for(other_paramedic.user), url, etag).status_code == 404


class TestTaskList:
    def url(self, paramedic):
        return f"/api/v1/paramedics/{paramedic.id}/tasks"

    def test_unchanged_is_304_with_a_fixed_number_of_queries(
        self, paramedic, django_assert_num_queries
    ):
        put_on_task(paramedic)
        client = client_for(paramedic.user)
        etag = etag_of(client, self.url(paramedic))
        # The JWT user with its paramedic (also the scope), one aggregate of the tasks.
        with django_assert_num_queries(2):
            response = revalidate(client, self.url(paramedic), etag)
        assert response.status_code == 304
        assert response.content == b""

    def test_filters_have_their_own_etags(self, paramedic):
        put_on_task(paramedic)
        client = client_for(paramedic.user)
        everything = etag_of(client, self.url(paramedic))
        assigned = etag_of(client, self.url(paramedic), status="assigned")
        assert everything != assigned
        assert (
            revalidate(client, self.url(paramedic), assigned, status="assigned").status_code == 304
        )
        assert revalidate(client, self.url(paramedic), assigned).status_code == 200

    def test_a_task_that_changes_joins_or_leaves_gives_a_new_etag(self, paramedic, supervisor):
        client = client_for(paramedic.user)
        url = self.url(paramedic)
        since = (timezone.now() - timezone.timedelta(hours=1)).isoformat()

        etag = etag_of(client, url, updated_after=since)
        task = put_on_task(paramedic)  # joins
        response = revalidate(client, url, etag, updated_after=since)
        assert response.status_code == 200
        assert [t["id"] for t in response.json()["results"]] == [str(task.id)]
        etag = response["ETag"]

        task_record_milestone(  # changes (a history row)
            task_id=task.pk,
            paramedic_id=paramedic.pk,
            milestone="acknowledged",
            actor=paramedic.user,
        )
        response = revalidate(client, url, etag, updated_after=since)
        assert response.status_code == 200
        etag = response["ETag"]
        assert revalidate(client, url, etag, updated_after=since).status_code == 304

        task_change_status(task_id=task.pk, to_status="pending", actor=paramedic.user)  # leaves
        response = revalidate(client, url, etag, updated_after=since)
        assert response.status_code == 200
        assert response.json()["results"] == []
        assert response.json()["removed"] == [str(task.id)]

    def test_paging_etags_match_between_the_304_and_200_paths(self, paramedic):
        client = client_for(paramedic.user)
        url = self.url(paramedic)
        for i in range(3):
            task = put_on_task(paramedic, request_id=f"r-{i}")
            task_change_status(task_id=task.pk, to_status="in_progress", actor=paramedic.user)
            task_change_status(task_id=task.pk, to_status="completed", actor=paramedic.user)
        etag = etag_of(client, url, page_size=2)
        assert revalidate(client, url, etag, page_size=2).status_code == 304
        other = ParamedicFactory()
        assert revalidate(client_for(other.user), url, etag, page_size=2).status_code == 404
