"""Safe replay of field writes (design §17): one Idempotency-Key, one effect, one answer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.idempotency import REPLAYED_HEADER
from core.errors import ServiceUnavailable
from core.models import IdempotencyRecord
from core.services import idempotency_records_purge
from paramedics.models import Paramedic
from tasks import views as task_views
from tasks.models import TaskHistory, TaskStatus
from tests.factories import put_on_task
from tests.helpers import API, client_for, in_parallel

KEY = "device-7f3a-0001"


def post(client, url, body, key=KEY):
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def status_url(paramedic, task):
    return f"{API}/paramedics/{paramedic.id}/tasks/{task.id}"


def test_a_repeated_status_change_is_one_effect_and_the_same_answer(paramedic_client, paramedic):
    task = put_on_task(paramedic)
    first = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})
    again = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again[REPLAYED_HEADER] == "true" and REPLAYED_HEADER not in first
    assert TaskHistory.objects.filter(task=task, to_status="in_progress").count() == 1


def test_a_repeated_milestone_is_one_effect(paramedic_client, paramedic):
    task = put_on_task(paramedic)
    url = status_url(paramedic, task) + "/milestones"
    answers = [post(paramedic_client, url, {"milestone": "acknowledged"}) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert answers[1].json() == answers[2].json() == answers[0].json()
    assert TaskHistory.objects.filter(task=task, milestone="acknowledged").count() == 1


def test_a_repeated_location_update_is_one_effect(paramedic_client, paramedic):
    url = f"{API}/paramedics/{paramedic.id}"
    body = {"last_location": {"lat": 50.1, "lon": 8.6}}
    first = paramedic_client.patch(url, body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    written = Paramedic.objects.get(pk=paramedic.pk).updated_at
    again = paramedic_client.patch(url, body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert Paramedic.objects.get(pk=paramedic.pk).updated_at == written


def test_the_same_key_with_another_request_is_422(paramedic_client, paramedic):
    task = put_on_task(paramedic)
    post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})
    other = post(paramedic_client, status_url(paramedic, task), {"status": "completed"})

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_a_replayed_start_after_the_task_was_completed_answers_the_first_200(
    paramedic_client, paramedic
):
    task = put_on_task(paramedic)
    started = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})
    post(paramedic_client, status_url(paramedic, task), {"status": "completed"}, key="k-2")

    replay = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})

    assert replay.status_code == 200
    assert replay.json() == started.json()
    assert replay.json()["status"] == "in_progress"
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_a_refusal_is_the_first_answer_too(paramedic_client, paramedic):
    """A device that cannot tell "my earlier request failed" from "it worked" gets the
    same answer again: the stored 409, not a new attempt."""
    task = put_on_task(paramedic)
    refused = post(paramedic_client, status_url(paramedic, task), {"status": "completed"})
    post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"}, key="k-2")

    replay = post(paramedic_client, status_url(paramedic, task), {"status": "completed"})

    assert refused.status_code == replay.status_code == 409
    assert replay.json() == refused.json()
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_an_answer_that_is_not_final_is_not_kept(paramedic_client, paramedic, monkeypatch):
    task = put_on_task(paramedic)
    real = task_views.task_change_status

    def down_once(**kwargs):
        monkeypatch.setattr(task_views, "task_change_status", real)
        raise ServiceUnavailable()

    monkeypatch.setattr(task_views, "task_change_status", down_once)
    first = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})
    retry = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})

    assert (first.status_code, retry.status_code) == (503, 200)
    assert REPLAYED_HEADER not in retry
    assert IdempotencyRecord.objects.get().status_code == 200


def test_keys_belong_to_their_paramedic(paramedic, other_paramedic):
    mine, theirs = put_on_task(paramedic), put_on_task(other_paramedic)
    me, them = client_for(paramedic.user), client_for(other_paramedic.user)

    assert post(me, status_url(paramedic, mine), {"status": "in_progress"}).status_code == 200
    # The same key is another paramedic's own key: its own first request.
    theirs_started = post(them, status_url(other_paramedic, theirs), {"status": "in_progress"})
    assert theirs_started.status_code == 200
    assert REPLAYED_HEADER not in theirs_started
    # Nobody replays another paramedic's answers: its URL is 404 first.
    probe = post(them, status_url(paramedic, mine), {"status": "in_progress"})
    assert probe.status_code == 404


@pytest.mark.parametrize("key", ["", "x" * 129, "ключ", "a\tb"])
def test_a_malformed_key_is_400(paramedic_client, paramedic, key):
    task = put_on_task(paramedic)
    response = post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"}, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    task.refresh_from_db()
    assert task.status == TaskStatus.ASSIGNED


def test_keys_are_kept_48_hours_then_purged(paramedic_client, paramedic, settings):
    task = put_on_task(paramedic)
    post(paramedic_client, status_url(paramedic, task), {"status": "in_progress"})
    post(paramedic_client, status_url(paramedic, task), {"status": "completed"}, key="k-2")
    IdempotencyRecord.objects.filter(key=KEY).update(
        created_at=timezone.now() - timedelta(hours=49)
    )

    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k-2"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_repeats_make_one_effect_and_one_answer(paramedic):
    task = put_on_task(paramedic)

    def start(i):
        return post(
            client_for(paramedic.user), status_url(paramedic, task), {"status": "in_progress"}
        )

    answers = in_parallel(10, start)

    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert TaskHistory.objects.filter(task=task, to_status="in_progress").count() == 1
    assert sum(1 for a in answers if REPLAYED_HEADER not in a) == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_repeats_of_a_milestone_and_a_location(paramedic):
    task = put_on_task(paramedic)
    milestone_url = status_url(paramedic, task) + "/milestones"

    milestones = in_parallel(
        10, lambda i: post(client_for(paramedic.user), milestone_url, {"milestone": "acknowledged"})
    )
    locations = in_parallel(
        10,
        lambda i: client_for(paramedic.user).patch(
            f"{API}/paramedics/{paramedic.id}",
            {"last_location": {"lat": 48.1, "lon": 11.5}},
            format="json",
            HTTP_IDEMPOTENCY_KEY="loc-1",
        ),
    )

    for answers in (milestones, locations):
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
    assert TaskHistory.objects.filter(task=task, milestone="acknowledged").count() == 1
