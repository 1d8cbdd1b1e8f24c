"""Event streams hold access and server resources for hours; both stay bounded.

- Access is re-checked for as long as a stream is open: once the credentials that
  opened it would no longer be accepted by a new request (logout, password change,
  deactivation, removal, loss of the role), the stream sends `stream.closed` with the
  code that request would get, within one heartbeat and before any further event.
- Each caller holds at most LIVE_MAX_STREAMS_PER_USER open streams: opening one more
  closes the caller's oldest (`too_many_streams`).
- A reader that stops reading holds at most LIVE_STREAM_BACKLOG queued events: past
  them its stream is closed (`too_slow`), and it resumes by Last-Event-ID.

Through a real ASGI server (uvicorn) in the test process; the streams are the ones
field devices and the admin dispatch board open.
"""

import socket
import time
from contextlib import ExitStack

import httpx
import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from core.roles import SUPERVISORS
from integrations import live
from tasks.services import task_assign
from tests.factories import ParamedicFactory, TaskFactory, UserFactory
from tests.server.sse import AsgiServer, Stream, open_stream

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT = 0.5
# Scheduling slack on a shared two-core machine, on top of the one heartbeat allowed.
SLACK = 1.5


@pytest.fixture
def server(settings):
    settings.LIVE_HEARTBEAT_SECONDS = HEARTBEAT
    settings.LIVE_POLL_SECONDS = 0.1
    server = AsgiServer()
    yield server
    server.stop()


@pytest.fixture
def http():
    with httpx.Client(timeout=httpx.Timeout(15.0)) as client:
        yield client


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def change_password(user, browser):
    user.set_password("a-new-password-2026")
    user.save()


def deactivate(user, browser):
    user.is_active = False
    user.save()


def leave_supervisors(user, browser):
    user.groups.remove(Group.objects.get(name=SUPERVISORS))


def remove(user, browser):
    user.delete()


def log_out(user, browser):
    browser.logout()  # django.contrib.auth.logout, as the console's "Log out" calls it


# (who opens which stream with what, what ends the access, the reason sent)
ENDINGS = [
    ("paramedic", "own", "token", change_password, "password_changed"),
    ("paramedic", "own", "token", deactivate, "user_inactive"),
    ("supervisor", "all", "token", change_password, "password_changed"),
    ("supervisor", "all", "token", deactivate, "user_inactive"),
    ("supervisor", "all", "token", leave_supervisors, "permission_denied"),
    ("supervisor", "all", "token", remove, "user_not_found"),
    ("supervisor", "own", "token", leave_supervisors, "permission_denied"),
    ("supervisor", "all", "session", log_out, "not_authenticated"),
    ("supervisor", "all", "session", change_password, "not_authenticated"),
    ("supervisor", "all", "session", deactivate, "not_authenticated"),
    ("supervisor", "all", "session", leave_supervisors, "permission_denied"),
]


def _open(http, server, who, stream, credentials, paramedic, supervisor):
    """(the user, its console browser, the stream's request) for one row of ENDINGS."""
    user = paramedic.user if who == "paramedic" else supervisor
    path = f"/api/v1/paramedics/{paramedic.id}/events" if stream == "own" else "/api/v1/events"
    browser = Client()
    if credentials == "token":
        headers = bearer(user)
    else:  # the admin session, as the dispatch board sends it
        browser.force_login(user)
        headers = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    return user, browser, open_stream(http, server.url + path, None, **headers)


@pytest.mark.parametrize(
    ("who", "stream", "credentials", "end", "reason"),
    ENDINGS,
    ids=[f"{w}-{s}-{c}-{e.__name__}" for w, s, c, e, _ in ENDINGS],
)
class TestAccessIsRechecked:
    def test_the_stream_ends_within_a_heartbeat(
        self, server, http, paramedic, supervisor, who, stream, credentials, end, reason
    ):
        user, browser, opening = _open(
            http, server, who, stream, credentials, paramedic, supervisor
        )
        with opening as response:
            assert response.status_code == 200
            events = Stream(response)
            next(events.lines)  # under way
            ended = time.monotonic()
            end(user, browser)
            closed = events.until("stream.closed")
            assert closed.json() == {"reason": reason}
            assert time.monotonic() - ended < HEARTBEAT + SLACK
            with pytest.raises(EOFError):
                events.next()

    def test_no_event_is_sent_after_the_access_ended(
        self, server, http, settings, paramedic, supervisor, who, stream, credentials, end, reason
    ):
        settings.LIVE_HEARTBEAT_SECONDS = 60  # only the check before each event can see it
        dispatcher = UserFactory(username="dispatcher", is_staff=True, groups=[SUPERVISORS])
        user, browser, opening = _open(
            http, server, who, stream, credentials, paramedic, supervisor
        )
        with opening as response:
            events = Stream(response)
            next(events.lines)
            end(user, browser)
            task = TaskFactory()
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=dispatcher)
            following = events.next()
            assert (following.kind, following.json()) == ("stream.closed", {"reason": reason})


class TestPerCallerCap:
    def test_opening_one_too_many_closes_the_callers_oldest(
        self, server, http, settings, paramedic, other_paramedic, supervisor
    ):
        settings.LIVE_MAX_STREAMS_PER_USER = 2
        url = f"{server.url}/api/v1/paramedics/{paramedic.id}/events"
        with ExitStack() as opened:
            streams = []
            for _ in range(3):
                response = opened.enter_context(
                    open_stream(http, url, None, **bearer(paramedic.user))
                )
                assert response.status_code == 200
                streams.append(Stream(response))
                next(streams[-1].lines)
            # Another caller's streams are not its to count.
            other = opened.enter_context(
                open_stream(
                    http,
                    f"{server.url}/api/v1/paramedics/{other_paramedic.id}/events",
                    None,
                    **bearer(other_paramedic.user),
                )
            )
            assert other.status_code == 200
            oldest, *newest = streams
            closed = oldest.until("stream.closed")
            assert closed.json() == {"reason": "too_many_streams"}
            with pytest.raises(EOFError):
                oldest.next()
            task = TaskFactory()
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
            for stream in newest:
                assert stream.until("task.assigned").json()["id"] == str(task.id)

    def test_the_cache_losing_its_count_neither_lifts_the_cap_nor_closes_a_stream(
        self, server, http, settings, paramedic, supervisor
    ):
        """The cache may evict keys (the local-memory one culls); the process's own
        count still holds the cap, and a lost key closes nothing by itself."""
        settings.LIVE_MAX_STREAMS_PER_USER = 2
        url = f"{server.url}/api/v1/paramedics/{paramedic.id}/events"
        with ExitStack() as opened:
            streams = []
            for _ in range(3):
                cache.clear()  # every slot key lost before each new stream
                response = opened.enter_context(
                    open_stream(http, url, None, **bearer(paramedic.user))
                )
                streams.append(Stream(response))
                next(streams[-1].lines)
            oldest, *newest = streams
            assert oldest.until("stream.closed").json() == {"reason": "too_many_streams"}
            newest[0].beats(3)  # heartbeats pass: the others stay open
            task = TaskFactory()
            task_assign(task_id=task.pk, paramedic_id=paramedic.pk, actor=supervisor)
            for stream in newest:
                assert stream.until("task.assigned").json()["id"] == str(task.id)

    def test_streams_of_many_callers_are_not_limited_together(
        self, server, http, settings, supervisor
    ):
        settings.LIVE_MAX_STREAMS_PER_USER = 1
        crew = [ParamedicFactory() for _ in range(3)]
        with ExitStack() as opened:
            streams = {}
            for member in crew:
                url = f"{server.url}/api/v1/paramedics/{member.id}/events"
                response = opened.enter_context(open_stream(http, url, None, **bearer(member.user)))
                streams[member.pk] = Stream(response)
                next(streams[member.pk].lines)
            for member in crew:
                task = TaskFactory()
                task_assign(task_id=task.pk, paramedic_id=member.pk, actor=supervisor)
                assert streams[member.pk].until("task.assigned").json()["id"] == str(task.id)


class TestSlowReader:
    def test_a_reader_that_falls_behind_is_closed_and_resumes_by_last_event_id(
        self, server, settings, supervisor
    ):
        settings.LIVE_HEARTBEAT_SECONDS = 60
        settings.LIVE_STREAM_BACKLOG = 5
        # Small socket buffers on both ends, so a reader that stops reading holds the
        # server's writes back after a few events instead of after megabytes.
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        small = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        url, auth = f"{server.url}/api/v1/events", bearer(supervisor)
        with (
            httpx.Client(transport=small, timeout=15) as slow,
            open_stream(slow, url, None, **auth) as r,
        ):
            stream = Stream(r)
            next(stream.lines)  # under way; from now on it reads nothing
            tasks = [TaskFactory(description="x" * 4000) for _ in range(40)]
            deadline = time.monotonic() + 10
            while live.hub.open_streams:  # closed while its reader is away
                assert time.monotonic() < deadline, "the stream was not closed"
                time.sleep(0.05)
            received = []
            while (event := stream.next()).kind != "stream.closed":
                received.append(event)
            assert event.json() == {"reason": "too_slow"}
            with pytest.raises(EOFError):
                stream.next()
        assert 0 < len(received) < len(tasks)
        with (
            httpx.Client(timeout=15) as http,
            open_stream(http, url, None, **auth, **{"Last-Event-ID": received[-1].id}) as r,
        ):
            stream = Stream(r)
            resumed = [stream.next() for _ in range(len(tasks) - len(received))]
        every = [e.json()["id"] for e in received + resumed]
        assert every == [str(t.id) for t in tasks]  # all of them, once each, in order
