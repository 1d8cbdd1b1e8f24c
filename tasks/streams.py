"""Server-Sent Events for field devices and the dispatch board (DESIGN §12).

The views are DRF views: authentication, permissions, throttling, scoping (another
paramedic's stream is a 404) and JSON errors are the REST endpoints' own. What
they return is a streaming response over an async generator: under the ASGI
server an open stream waits on its event loop and holds no thread.

Each event is the log row's id (`id:`), its kind (`event:`) and, as `data:`,
the subject as the stream's viewer sees it now (GET /tasks/{id} as that
paramedic, or as a supervisor; the paramedic for a `paramedic.*` event). A task
that left the paramedic's list is sent as `{"id": ..., "removed": true}`.
"""

import asyncio
import functools
import json
import time
from types import SimpleNamespace

from asgiref.sync import sync_to_async
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

from api.authentication import JWTAuthentication
from api.schema import error_responses
from core.errors import ApplicationError
from core.permissions import IsSupervisor, IsSupervisorOrParamedic
from integrations import live
from paramedics.models import Paramedic
from paramedics.selectors import paramedic_visible_to
from paramedics.serializers import ParamedicSerializer

from .models import EmergencyTask
from .selectors import with_history
from .serializers import TaskDetailSerializer

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
        "order (events are kept LIVE_RETENTION_HOURS, at least 24 h).",
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
    "A comment line every 15 s; the stream ends when the access token expires, after "
    "a `stream.closed` event.",
)


class EventStreamView(APIView):
    content_negotiation_class = JsonErrors
    long_lived = True  # no thread of its own while open (core.asgi)

    def stream(self, request, *, paramedic: Paramedic | None) -> StreamingHttpResponse:
        streaming = isinstance(request._request, ASGIRequest)
        start_after = _resume_point(request, cursor=live.hub.start())
        response = StreamingHttpResponse(
            _frames(
                start_after=start_after,
                paramedic=paramedic,
                viewer=paramedic.user if paramedic else request.user,  # loaded here
                deadline=_deadline(request),
                # A WSGI server reads a response to its end before sending it: there
                # the stream is the replay, then closed (the device reconnects).
                streaming=streaming,
            ),
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

    @extend_schema(
        operation_id="stream_paramedic_events",
        summary="A paramedic's task changes as they commit (Server-Sent Events)",
        description="The paramedic itself or a supervisor; another paramedic's stream is "
        "404. Each event's data is the task as that paramedic sees it (GET /tasks/{id}).",
        parameters=STREAM_PARAMETERS,
        responses={(200, "text/event-stream"): STREAM_RESPONSE, **error_responses(400)},
    )
    def get(self, request, paramedic_id):
        paramedic = paramedic_visible_to(request.user, paramedic_id)
        return self.stream(request, paramedic=paramedic)


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
        return self.stream(request, paramedic=None)


def _resume_point(request, *, cursor: int) -> int:
    """Where the stream starts: after Last-Event-ID (the header, or ?last_event_id=),
    else after `cursor`, the hub's newest event (live from now)."""
    requested = request.headers.get("Last-Event-ID") or request.query_params.get(
        "last_event_id"
    )
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


async def _frames(*, start_after: int, paramedic, viewer, deadline: float, streaming: bool):
    paramedic_id = paramedic.pk if paramedic else None
    briefly = functools.partial(_briefly, give_back=streaming)
    subscription = live.hub.subscribe(paramedic_id)
    last = start_after
    try:
        yield f"retry: {RETRY_MILLISECONDS}\nid: {last}\n\n"
        while True:  # the replay, in pages, then whatever arrived meanwhile
            missed = await briefly(live.events_after, last, paramedic_id=paramedic_id)
            for event in missed:
                yield await _frame(briefly, event, paramedic, viewer)
                last = event.id
            if len(missed) < live.REPLAY_PAGE:
                break
        if not streaming:
            yield 'event: stream.closed\ndata: {"reason": "not_streaming"}\n\n'
            return
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                yield 'event: stream.closed\ndata: {"reason": "token_expired"}\n\n'
                return
            wait = min(settings.LIVE_HEARTBEAT_SECONDS, remaining)
            try:
                event = await asyncio.wait_for(subscription.queue.get(), wait)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event.id <= last:
                continue  # already sent by the replay
            yield await _frame(briefly, event, paramedic, viewer)
            last = event.id
    finally:
        live.hub.unsubscribe(subscription)


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


async def _frame(briefly, event, paramedic, viewer) -> str:
    data = await briefly(_render, event, paramedic, viewer)
    body = json.dumps(data, cls=JSONEncoder, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n"


def _render(event, paramedic, viewer) -> dict:
    """The subject as the viewer sees it now."""
    if event.subject_type == "paramedic":
        subject = Paramedic.objects.filter(pk=event.subject_id).first()
        return ParamedicSerializer(subject).data if subject else {"id": event.subject_id}
    task = with_history(EmergencyTask.objects.filter(pk=event.subject_id)).first()
    if task is None or (paramedic is not None and task.paramedic_id != paramedic.pk):
        return {"id": event.subject_id, "removed": True}
    context = {"request": SimpleNamespace(user=viewer)}
    return TaskDetailSerializer(task, context=context).data
