"""Server-Sent Events for field devices and the dispatch board (design §12).

The views are DRF views: authentication, permissions, throttling, scoping (another
paramedic's stream is a 404) and JSON errors are the REST endpoints' own. What
they return is a streaming response over an async generator: under the ASGI
server an open stream waits on its event loop and holds no thread.

Each event is the log row's id (`id:`), its kind (`event:`) and, as `data:`,
the subject as the stream's viewer sees it now (GET /tasks/{id} as that
paramedic, or as a supervisor; the paramedic for a `paramedic.*` event). A task
that left the paramedic's list is sent as `{"id": ..., "removed": true}`.

An open stream stays within what its caller may hold. Its access is asked again
every heartbeat and before it sends events (api.access): once a new request with
its credentials would be refused, it sends `stream.closed` with that request's
error code and ends. A caller holds at most LIVE_MAX_STREAMS_PER_USER streams
(a new one closes its oldest, `too_many_streams`), and a reader more than
LIVE_STREAM_BACKLOG events behind is closed (`too_slow`). The streams of a
process share the work they need alike: an event is rendered once per view
(one paramedic's, or supervisors'), a caller's access checked once per
heartbeat or event, whatever the number of its streams.
"""

import asyncio
import functools
import json
import time
from dataclasses import dataclass
from types import SimpleNamespace

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from api.access import Credentials, refusal
from api.authentication import JWTAuthentication
from api.schema import error_responses
from core.errors import DATABASE_DOWN, ApplicationError
from core.permissions import IsSupervisor, IsSupervisorOrParamedic
from integrations import live
from paramedics.events import AGGREGATE_TYPE as PARAMEDIC_SUBJECT
from paramedics.events import ParamedicEvent
from paramedics.models import Paramedic
from paramedics.selectors import paramedic_visible_to
from paramedics.serializers import ParamedicSerializer

from .events import LIVE_KINDS
from .models import EmergencyTask
from .selectors import with_history
from .serializers import TaskDetailSerializer

# Every kind an event stream sends (its `event:` line), besides `stream.closed`.
STREAMED_KINDS = (*LIVE_KINDS, ParamedicEvent.STATUS_CHANGED)

# How long a device waits before reconnecting after the stream ends (SSE `retry:`).
RETRY_MILLISECONDS = 2000


class InvalidLastEventId(ApplicationError):
    code = "invalid_last_event_id"
    default_detail = "Last-Event-ID must be an id this stream sent (ASCII digits)."


class JsonErrors(BaseContentNegotiation):
    """Errors are JSON whatever the client accepts (it asks for text/event-stream)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


STREAM_PARAMETERS = [
    OpenApiParameter(
        "Last-Event-ID",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="The last id received: every event after it is replayed first, in "
        "order (events are kept LIVE_RETENTION_HOURS, at least 24 h). ASCII digits; "
        "anything else, or an id past the newest event, is 400 `invalid_last_event_id`.",
    ),
    OpenApiParameter(
        "last_event_id",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        description="The same, for clients that cannot set headers (the header wins).",
    ),
]
# One Server-Sent Event, as a client's parser sees it (`data` is JSON text).
SERVER_SENT_EVENT = inline_serializer(
    "ServerSentEvent",
    fields={
        "id": serializers.CharField(required=False, help_text="Opaque, increasing."),
        "event": serializers.CharField(required=False, help_text="The kind of change."),
        "data": serializers.CharField(
            required=False, help_text="JSON: the subject as the viewer sees it."
        ),
        "retry": serializers.IntegerField(required=False, help_text="Reconnect delay, ms."),
    },
)
STREAM_RESPONSE = OpenApiResponse(
    response=SERVER_SENT_EVENT,
    description="`text/event-stream`: `id:`, `event:` (task.created, task.assigned, "
    "task.status_changed, task.milestone, paramedic.status_changed) and `data:` (JSON). "
    "A comment line every 15 s. The service ends a stream with a `stream.closed` event "
    'whose data is `{"reason": ...}`: `token_expired` (reconnect with a fresh token), '
    "`too_slow` (the reader fell LIVE_STREAM_BACKLOG events behind: reconnect with "
    "Last-Event-ID), `database_unavailable` (reconnect shortly with Last-Event-ID), "
    "`too_many_streams` (the caller opened more than "
    "LIVE_MAX_STREAMS_PER_USER; this was its oldest), or, once the access that opened "
    "it has ended (logout, password change, deactivation, a lost role), the error code "
    "a new request would get (`password_changed`, `user_inactive`, `user_not_found`, "
    "`not_authenticated`, `permission_denied`, `not_found`): sign in again.",
)
# Shared by the streams of this process (integrations.live.SharedWork). A render is
# worth keeping while streams send or replay its event: seconds to minutes.
RENDERS = live.SharedWork("render", size=1024)
ACCESS_CHECKS = live.SharedWork("access_check", size=4096)


class EventStreamView(APIView):
    content_negotiation_class = JsonErrors
    long_lived = True  # no thread of its own while open (core.asgi)

    def subject(self, request) -> Paramedic | None:
        """Whose events the stream carries (None: everyone's), as the caller may see
        them; asked again while the stream is open (api.access)."""
        return None

    def stream(self, request) -> StreamingHttpResponse:
        paramedic = self.subject(request)
        streaming = isinstance(request._request, ASGIRequest)
        start_after = _resume_point(request, cursor=live.hub.start())
        frames = _frames(
            access=Access(
                view=type(self),
                credentials=Credentials.of(request._request),
                path=request.path,
                kwargs=tuple(sorted(self.kwargs.items())),
            ),
            owner=request.user.pk,
            start_after=start_after,
            view=StreamView(  # the user is loaded here, once
                paramedic=paramedic, viewer=paramedic.user if paramedic else request.user
            ),
            deadline=_deadline(request),
            # A WSGI server reads a response to its end before sending it: there
            # the stream is the replay, then closed (the device reconnects).
            streaming=streaming,
        )
        # Under WSGI the replay is read here, so the server gets a plain iterator
        # (Django would warn, then list an async one into memory itself).
        response = StreamingHttpResponse(
            frames if streaming else async_to_sync(_collected)(frames),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # proxies must not buffer it
        if streaming:
            # The request's connection goes back to the pool now, not when the
            # stream ends: an open stream holds no database connection.
            connection.close()
        return response


class ParamedicEventsView(EventStreamView):
    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]

    def subject(self, request) -> Paramedic:
        return paramedic_visible_to(request.user, self.kwargs["paramedic_id"])

    @extend_schema(
        operation_id="stream_paramedic_events",
        summary="A paramedic's task changes as they commit (Server-Sent Events)",
        description="The paramedic itself or a supervisor; another paramedic's stream is "
        "404. Each event's data is the task as that paramedic sees it (GET /tasks/{id}).",
        parameters=STREAM_PARAMETERS,
        responses={(200, "text/event-stream"): STREAM_RESPONSE, **error_responses(400)},
    )
    def get(self, request, paramedic_id):
        return self.stream(request)


class SupervisorEventsView(EventStreamView):
    # The admin dispatch board subscribes with its session (a GET: no CSRF needed).
    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsSupervisor]

    @extend_schema(
        operation_id="stream_events",
        summary="Every task change and paramedic status change (Server-Sent Events)",
        description="Supervisors (bearer token or the admin session).",
        parameters=STREAM_PARAMETERS,
        responses={(200, "text/event-stream"): STREAM_RESPONSE, **error_responses(400)},
    )
    def get(self, request):
        return self.stream(request)


@dataclass(frozen=True)
class Access:
    """How a stream was opened, to ask whether a new request would still be served.
    Equal for streams opened alike (same view, URL and credentials): they share
    one check."""

    view: type[EventStreamView]
    credentials: Credentials
    path: str
    kwargs: tuple

    def refusal(self) -> str | None:
        return refusal(
            self.view,
            self.credentials,
            path=self.path,
            kwargs=dict(self.kwargs),
            lookup=lambda view, request: view.subject(request),
        )


@dataclass(frozen=True, eq=False)
class StreamView:
    """As whom a stream's events are rendered: one paramedic (its tasks as it sees
    them) or supervisors (everything). `key` names what a render depends on, so
    streams with the same view share it."""

    paramedic: Paramedic | None
    viewer: object  # the paramedic's user, or the supervisor who opened the stream

    @property
    def paramedic_id(self):
        return self.paramedic.pk if self.paramedic else None

    @property
    def key(self) -> tuple:
        return ("paramedic", self.paramedic.pk) if self.paramedic else ("supervisors",)


def _resume_point(request, *, cursor: int) -> int:
    """Where the stream starts: after Last-Event-ID (the header, or ?last_event_id=),
    else after `cursor`, the hub's newest event (live from now)."""
    requested = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id")
    if not requested:
        return cursor
    # ASCII only: str.isdigit() is also true for "²" (which int() refuses) and for
    # other scripts' digits (which int() reads as another number).
    if not (requested.isascii() and requested.isdigit()) or len(requested) > 18:
        raise InvalidLastEventId()
    last = int(requested)
    # An id past the newest would skip every live event up to it. Another process's
    # hub may be ahead of ours: only then is the log itself asked.
    if last > cursor and last > live.latest_id():
        raise InvalidLastEventId(
            "Last-Event-ID is past the newest event; reconnect without it to start afresh."
        )
    return last


def _deadline(request) -> float:
    """A bearer token's stream ends when the token expires (the device reconnects with
    a fresh one); a session's after LIVE_STREAM_MAX_SECONDS."""
    limit = time.time() + settings.LIVE_STREAM_MAX_SECONDS
    token = getattr(request, "auth", None)
    expires = token.get("exp") if hasattr(token, "get") else None
    return min(limit, float(expires)) if expires else limit


def _next_beat(access: Access) -> float:
    """The next heartbeat (time.monotonic()) of streams opened with `access`. A
    process's streams with the same credentials beat together, so one access check
    serves them all; different credentials are spread over the interval."""
    period = settings.LIVE_HEARTBEAT_SECONDS
    phase = hash(access) % 1000 / 1000 * period
    now = time.monotonic()
    return now + period - (now - phase) % period


def _closed(reason: str) -> str:
    live.STREAMS_CLOSED.labels(reason).inc()
    return f"event: stream.closed\ndata: {json.dumps({'reason': reason})}\n\n"


async def _frames(
    *, access: Access, owner, start_after: int, view: StreamView, deadline, streaming
):
    briefly = functools.partial(_briefly, give_back=streaming)
    subscription = slot = None
    last = start_after

    def ending(reason: str) -> str:
        # A token refused from its expiry on is simply expired (the device reconnects
        # with a fresh one), however close to the deadline the check ran.
        return _closed("token_expired" if time.time() >= deadline else reason)

    try:
        if streaming:  # under WSGI the stream ends at once and holds nothing
            stream_id = live.new_stream_id()
            slot, displaced = await briefly(live.stream_cap.claim, owner, stream_id, deadline)
            subscription = live.hub.subscribe(view.paramedic_id, owner=owner, stream_id=stream_id)
            live.hub.close_streams(displaced, "too_many_streams")
        yield f"retry: {RETRY_MILLISECONDS}\nid: {last}\n\n"
        while True:  # the replay, in pages, then whatever arrived meanwhile
            missed = await briefly(live.events_after, last, audience=view.paramedic_id)
            if missed and (reason := await _refused(briefly, access, since=time.monotonic())):
                yield ending(reason)
                return
            for event in missed:
                yield await _frame(briefly, event, view)
                last = event.id
            if len(missed) < live.REPLAY_PAGE:
                break
        if not streaming:
            yield _closed("not_streaming")
            return
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                yield _closed("token_expired")
                return
            beat = _next_beat(access)
            try:
                first = await asyncio.wait_for(
                    subscription.queue.get(), min(beat - time.monotonic(), remaining)
                )
            except TimeoutError:
                if time.monotonic() < beat:
                    continue  # the deadline came first
                if (reason := await _refused(briefly, access, since=beat)) is not None:
                    yield ending(reason)
                    return
                yield ": keep-alive\n\n"
                continue
            queued = [first, *subscription.take_queued()]
            if live.CLOSED in queued:  # the reader resumes from the last id it got
                yield _closed(subscription.reason)
                return
            events = [event for event in queued if event.id > last]  # not replayed already
            if not events:
                continue
            # Cleared by a check that started after the newest of them was read.
            if reason := await _refused(briefly, access, since=events[-1].read_at):
                yield ending(reason)
                return
            for event in events:
                yield await _frame(briefly, event, view)
                last = event.id
    except DATABASE_DOWN:
        # Nothing unchecked is sent; the device reconnects (503 until the database is
        # back) and resumes from the last id it got.
        yield _closed("database_unavailable")
    finally:
        if subscription is not None:
            live.hub.unsubscribe(subscription)
        if slot is not None:
            # On the loop, not awaited: a stream being cancelled cannot wait for it
            # (one cache round trip).
            live.stream_cap.release(slot)


async def _refused(briefly, access: Access, *, since: float) -> str | None:
    """Why the stream's access has ended, or None; from a check started at or after
    `since` (time.monotonic()), run once for every stream opened alike."""
    run = functools.partial(briefly, access.refusal)
    return await ACCESS_CHECKS.get(access, run, fresh_since=since)


async def _briefly(function, *args, give_back: bool, **kwargs):
    """Database work of an open stream: on the process's shared sync thread (core.asgi),
    the connection given back to the pool right after (a stream holds one only while
    it reads). Not under WSGI, where the request ends at once (and a test's connection
    is the caller's)."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            if give_back:
                connection.close()

    return await sync_to_async(run, thread_sensitive=True)()


async def _frame(briefly, event, view: StreamView) -> str:
    """The event as the view sees it, rendered once for every stream with that view.
    Keyed by the id and its time too: a restored database (or a test's rolled-back
    rows) hands out an id again."""
    key = (event.id, event.created_at, view.key)
    return await RENDERS.get(key, functools.partial(briefly, _render_frame, event, view))


async def _collected(frames) -> list[str]:
    return [frame async for frame in frames]


def _render_frame(event, view: StreamView) -> str:
    body = json.dumps(_render(event, view), cls=JSONEncoder, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n"


def _render(event, view: StreamView) -> dict:
    """The subject as the viewer sees it now."""
    if event.subject_type == PARAMEDIC_SUBJECT:
        subject = Paramedic.objects.filter(pk=event.subject_id).first()
        return ParamedicSerializer(subject).data if subject else {"id": event.subject_id}
    task = with_history(EmergencyTask.objects.filter(pk=event.subject_id)).first()
    if task is None or (view.paramedic is not None and task.paramedic_id != view.paramedic.pk):
        return {"id": event.subject_id, "removed": True}
    context = {"request": SimpleNamespace(user=view.viewer)}
    return TaskDetailSerializer(task, context=context).data
