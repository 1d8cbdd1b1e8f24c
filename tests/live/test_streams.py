"""Event streams (DESIGN §12) through a real ASGI server (uvicorn) in the test process."""

import threading
import time
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from integrations.models import LiveEvent
from paramedics.services import paramedic_update
from tasks.services import task_assign, task_cancel, task_change_status
from tests.factories import ParamedicFactory, TaskFactory, put_on_task
from tests.live.sse import AsgiServer, Stream, open_stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(settings):
    settings.LIVE_HEARTBEAT_SECONDS = 0.3
    settings.LIVE_POLL_SECONDS = 0.1
    server = AsgiServer()
    yield server
    server.stop()


@pytest.fixture
def http():
    with httpx.Client(timeout=httpx.Timeout(15.0)) as client:
        yield client


def token(user, lifetime=None) -> str:
    access = AccessToken.for_user(user)
    if lifetime is not None:
        access.set_exp(lifetime=lifetime)
    return str(access)


def paramedic_url(server, paramedic) -> str:
    return f"{server.url}/api/v1/paramedics/{paramedic.id}/events"


class TestParamedicStream:
    def test_open_streams_hold_no_thread_each_and_all_get_their_events(
        self, server, http, paramedic, supervisor
    ):
        url, auth = paramedic_url(server, paramedic), token(paramedic.user)
        with ExitStack() as opened:
            streams = []

            def open_one() -> None:
                response = opened.enter_context(open_stream(http, url, auth))
                assert response.status_code == 200
                streams.append(Stream(response))
                next(streams[-1].lines)  # under way

            open_one()  # the first starts what every stream shares (hub, pool)
            threads = threading.active_count()
            for _ in range(12):
                open_one()
            assert threading.active_count() <= threads + 2
            task = TaskFactory()
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
            for stream in streams:
                assert stream.until("task.assigned").json()["id"] == str(task.id)

    def test_a_task_is_followed_from_assignment_to_completion(
        self, server, http, paramedic, supervisor
    ):
        task = TaskFactory()
        with open_stream(http, paramedic_url(server, paramedic), token(paramedic.user)) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            stream = Stream(r)
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
            assigned = stream.next()
            assert assigned.kind == "task.assigned"
            data = assigned.json()
            assert data["id"] == str(task.id)
            assert data["status"] == "assigned"
            assert data["history"][-1]["to_status"] == "assigned"

            task_change_status(task_id=task.pk, to_status="in_progress", actor=paramedic.user)
            started = stream.next()
            assert (started.kind, started.json()["status"]) == (
                "task.status_changed",
                "in_progress",
            )
            task_change_status(task_id=task.pk, to_status="completed", actor=paramedic.user)
            done = stream.next()
            assert done.json()["status"] == "completed"
            assert int(assigned.id) < int(started.id) < int(done.id)

    def test_cancel_and_decline_reach_the_paramedic_that_loses_the_task(
        self, server, http, paramedic, supervisor
    ):
        first = put_on_task(paramedic)
        with open_stream(http, paramedic_url(server, paramedic), token(paramedic.user)) as r:
            stream = Stream(r)
            task_cancel(task_id=first.pk, actor=supervisor, reason="duplicate call")
            cancelled = stream.next()
            assert cancelled.kind == "task.status_changed"
            assert cancelled.json()["status"] == "cancelled"

            second = put_on_task(paramedic)
            assert stream.next().kind == "task.assigned"
            task_change_status(task_id=second.pk, to_status="pending", actor=paramedic.user)
            declined = stream.next()
            # No longer its task: only that it left the list (no patient data).
            assert declined.json() == {"id": str(second.id), "removed": True}

    def test_reconnecting_replays_exactly_the_missed_events_in_order(
        self, server, http, paramedic, supervisor
    ):
        url = paramedic_url(server, paramedic)
        with open_stream(http, url, token(paramedic.user)) as r:
            stream = Stream(r)
            task = put_on_task(paramedic)
            seen = stream.next()
            assert seen.kind == "task.assigned"
        # A dead zone: three changes happen while no stream is open.
        task_change_status(task_id=task.pk, to_status="in_progress", actor=paramedic.user)
        task_change_status(task_id=task.pk, to_status="completed", actor=paramedic.user)
        other = put_on_task(paramedic)
        put_on_task(ParamedicFactory())  # not this paramedic's

        with open_stream(http, url, token(paramedic.user), **{"Last-Event-ID": seen.id}) as r:
            stream = Stream(r)
            replayed = [stream.next() for _ in range(3)]
            assert [e.kind for e in replayed] == [
                "task.status_changed",
                "task.status_changed",
                "task.assigned",
            ]
            assert [e.json()["id"] for e in replayed] == [str(task.id), str(task.id), str(other.id)]
            assert sorted(int(e.id) for e in replayed) == [int(e.id) for e in replayed]
            # Then live, nothing repeated.
            task_change_status(task_id=other.pk, to_status="in_progress", actor=paramedic.user)
            live = stream.next()
            assert int(live.id) > int(replayed[-1].id)

    def test_another_paramedics_stream_is_404_and_no_token_401(
        self, server, http, paramedic, other_paramedic
    ):
        url = paramedic_url(server, paramedic)
        with open_stream(http, url, token(other_paramedic.user)) as r:
            r.read()
            assert r.status_code == 404
            assert r.json()["code"] == "not_found"
        with open_stream(http, url, None) as r:
            r.read()
            assert r.status_code == 401
        with open_stream(http, url, token(paramedic.user), **{"Last-Event-ID": "x'1"}) as r:
            r.read()
            assert r.status_code == 400
            assert r.json()["code"] == "invalid_last_event_id"

    def test_the_stream_ends_when_the_token_expires(self, server, http, paramedic):
        short = token(paramedic.user, lifetime=timedelta(seconds=2))
        with open_stream(http, paramedic_url(server, paramedic), short) as r:
            stream = Stream(r)
            closed = stream.until("stream.closed")
            assert closed.json() == {"reason": "token_expired"}
            with pytest.raises(EOFError):
                stream.next()
            assert stream.comments >= 1  # heartbeats while idle

    def test_a_rolled_back_change_emits_nothing(self, server, http, paramedic, supervisor):
        task = TaskFactory()
        with open_stream(http, paramedic_url(server, paramedic), token(paramedic.user)) as r:
            stream = Stream(r)
            before = LiveEvent.objects.count()
            with transaction.atomic():
                task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
                transaction.set_rollback(True)  # the request failed after the assignment
            assert LiveEvent.objects.count() == before
            committed = put_on_task(paramedic)
            event = stream.next()  # the next event is the committed one, not the rollback
            assert event.json()["id"] == str(committed.id)


class TestSupervisorStream:
    def test_it_sees_every_task_and_paramedic_status(
        self, server, http, supervisor, paramedic, other_paramedic
    ):
        with open_stream(http, f"{server.url}/api/v1/events", token(supervisor)) as r:
            stream = Stream(r)
            task = TaskFactory()
            task_assign(task_id=task.pk, paramedic_id=other_paramedic.pk, actor=supervisor)
            assigned = stream.until("task.assigned")
            assert assigned.json()["paramedic"] == str(other_paramedic.id)
            paramedic_update(paramedic=paramedic, changes={"status": "off_duty"})
            status = stream.until("paramedic.status_changed")
            assert status.json()["status"] == "off_duty"

    def test_open_streams_are_counted_in_metrics(self, server, http, supervisor):
        def open_now() -> float:
            text = http.get(f"{server.url}/metrics").text
            (line,) = [x for x in text.splitlines() if x.startswith("paramedic_live_streams_open")]
            return float(line.split()[-1])

        before = open_now()
        with open_stream(http, f"{server.url}/api/v1/events", token(supervisor)) as r:
            stream = Stream(r)
            next(stream.lines)  # under way (the reference keeps the connection open)
            assert open_now() == before + 1
        deadline = time.monotonic() + 5
        while open_now() != before:  # the server notices the client left
            assert time.monotonic() < deadline
            time.sleep(0.1)

    def test_paramedics_may_not_open_it(self, server, http, paramedic):
        with open_stream(http, f"{server.url}/api/v1/events", token(paramedic.user)) as r:
            r.read()
            assert r.status_code == 403
