"""Event streams (design §12) through a real ASGI server (uvicorn) in the test process."""

import threading
import time
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework_simplejwt.tokens import AccessToken

from api.access import Credentials
from integrations.live import latest_id
from integrations.models import LiveEvent
from paramedics.services import paramedic_update
from tasks.services import task_assign, task_cancel, task_change_status
from tasks.streams import Access, ParamedicEventsView, SupervisorEventsView
from tests.factories import ParamedicFactory, TaskFactory, put_on_task
from tests.server.sse import AsgiServer, Stream, open_stream

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
        self, server, http, settings, paramedic, supervisor
    ):
        settings.LIVE_MAX_STREAMS_PER_USER = 13  # one caller's streams, all kept open
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


def work_done(kind: str) -> float:
    """Renders or access checks this process ran for its streams so far."""
    return REGISTRY.get_sample_value("paramedic_live_stream_work_total", {"work": kind}) or 0.0


def open_many(opened: ExitStack, http, url: str, headers: dict, count: int) -> list[Stream]:
    streams = []
    for _ in range(count):
        response = opened.enter_context(open_stream(http, url, None, **headers))
        assert response.status_code == 200
        streams.append(Stream(response))
        next(streams[-1].lines)  # under way
    return streams


class TestSharedWork:
    """Streams that need the same thing get one piece of work between them."""

    def test_an_event_is_rendered_once_per_view_whatever_the_number_of_streams(
        self, server, http, settings, paramedic, supervisor
    ):
        settings.LIVE_HEARTBEAT_SECONDS = 60  # no heartbeat checks in between
        settings.LIVE_MAX_STREAMS_PER_USER = 8
        own = {"Authorization": f"Bearer {token(paramedic.user)}"}
        board = {"Authorization": f"Bearer {token(supervisor)}"}
        with ExitStack() as opened:
            mine = open_many(opened, http, paramedic_url(server, paramedic), own, 8)
            boards = open_many(opened, http, f"{server.url}/api/v1/events", board, 3)
            task = TaskFactory()
            for stream in boards:  # task.created (supervisors' only), out of the way
                stream.until("task.created")
            before, newest = work_done("render"), latest_id()
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
            logged = list(LiveEvent.objects.filter(id__gt=newest).order_by("id"))
            theirs = [e for e in logged if paramedic.pk in (e.audience_id, e.former_audience_id)]
            assert theirs  # task.assigned, at least
            for streams, events in ((mine, theirs), (boards, logged)):
                sent = [[stream.next() for _ in events] for stream in streams]
                assert [e.id for e in sent[0]] == [str(e.id) for e in events]
                assert all(each == sent[0] for each in sent)  # the same frames
            # Once per event and view (the paramedic's, supervisors'), not per stream:
            # 8 streams had each of `theirs`, 3 each of `logged`.
            assert work_done("render") - before == len(theirs) + len(logged)

    def test_a_callers_access_is_checked_once_per_heartbeat_for_all_its_streams(
        self, server, http, settings, paramedic
    ):
        settings.LIVE_HEARTBEAT_SECONDS = 0.5
        settings.LIVE_MAX_STREAMS_PER_USER = 6
        own = {"Authorization": f"Bearer {token(paramedic.user)}"}
        with ExitStack() as opened:
            streams = open_many(opened, http, paramedic_url(server, paramedic), own, 6)
            for stream in streams:  # past one heartbeat: they beat together from now on
                stream.beats(1)
            before = work_done("access_check")
            streams[0].beats(5)  # four more heartbeats
            checks = work_done("access_check") - before
            assert 3 <= checks <= 5, checks  # one per heartbeat, not one per stream (24)


class TestAccessCheckCost:
    """One check, as a new request would meet the rules; exact queries per credential."""

    def check(self, view, credentials, path, **kwargs):
        access = Access(view=view, credentials=credentials, path=path, kwargs=tuple(kwargs.items()))
        with CaptureQueriesContext(connection) as queries:
            assert access.refusal() is None
        return len(queries)

    def test_a_paramedic_with_its_token(self, paramedic):
        bearer = Credentials(authorization=f"Bearer {token(paramedic.user)}")
        path = f"/api/v1/paramedics/{paramedic.id}/events"
        # The user with its paramedic profile (the profile scopes the stream: no query).
        assert self.check(ParamedicEventsView, bearer, path, paramedic_id=paramedic.pk) == 1

    def test_a_supervisor_with_its_token(self, supervisor):
        bearer = Credentials(authorization=f"Bearer {token(supervisor)}")
        # The user, then its groups (the role).
        assert self.check(SupervisorEventsView, bearer, "/api/v1/events") == 2

    def test_a_supervisor_with_its_console_session(self, supervisor):
        browser = Client()
        browser.force_login(supervisor)
        session = Credentials(session_key=browser.cookies["sessionid"].value)
        # The session row, the user, its groups.
        assert self.check(SupervisorEventsView, session, "/api/v1/events") == 3
