"""Django's ASGI handler, with what a long-running server needs that it lacks.

- **A ceiling on request bodies, before they are read.** Django's handler reads the
  whole body into a temporary file before any view runs, so under ASGI a view's
  "refuse before reading" (a declared size over the limit) came after a 2 GB body
  had been written to disk, and a chunked body had no bound at all. Here a body
  declared larger than its route allows is answered 413 at once, and one that grows
  past it is cut off there. A view that takes large bodies says how large
  (`max_body_bytes()`, the X-ray uploads); every other route takes at most
  REQUEST_BODY_MAX_BYTES. The views keep their own, finer limits. The 413 is the
  API's error body.
- **No thread per long-lived response.** Django runs a request's sync code (its
  middleware, a sync view) in a thread kept for that request (asgiref's
  ThreadSensitiveContext) until the response has been sent: for a Server-Sent Events
  stream that is an idle thread per device for hours. A view that marks itself
  `long_lived` does only short sync steps (authentication, the view, one database
  read per event), so its requests run outside that context: their sync steps take
  turns on the process's one shared sync thread, and an open stream waits on the
  event loop alone.
- **Sync streaming responses sent as they are read.** Django serves a sync streaming
  response under ASGI by listing it into memory first (with a warning), so an X-ray
  download sat in the worker's memory whole before its first byte left, and so did
  every static file WhiteNoise serves. Here a file is read and sent a block of
  STREAM_BLOCK_BYTES at a time and any other sync iterator a part at a time, each
  read in the request's thread.

Every other request is handled exactly as Django does. Django's request body spool
is sized by FILE_UPLOAD_MAX_MEMORY_SIZE (1 MiB here: past it a body goes to disk).

The Django internals this relies on, pinned by tests/core/test_django_internals.py
(which fails when a Django upgrade changes them, so this module is read again then):
`ASGIHandler.__call__` (wrapped: the ceiling, the long-lived path), `handle` (called
directly for long-lived views, outside ThreadSensitiveContext), `read_body` (reads
the wrapped `receive`, so the ceiling cuts it off), `send_response` (wrapped: sync
streams sent as read) and `chunk_bytes`; a FileResponse's `file_to_stream` and a
streaming response's `streaming_content`.
"""

import logging

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import JsonResponse
from django.urls import Resolver404, resolve

from core.errors import error_body

logger = logging.getLogger(__name__)

STREAM_BLOCK_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


def view_class(scope):
    """The class of the view the request's path routes to, or None."""
    path = scope["path"].removeprefix(scope.get("root_path", ""))  # as Django's path_info
    try:
        match = resolve(path or "/")
    except Resolver404:
        return None
    # Django's View.as_view() sets view_class; a DRF ViewSet's as_view() only cls.
    return getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)


def long_lived(view) -> bool:
    return bool(getattr(view, "long_lived", False))


def body_limit(view) -> int:
    own = getattr(view, "max_body_bytes", None)
    return own() if callable(own) else settings.REQUEST_BODY_MAX_BYTES


def declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django's parsers refuse a nonsense length
    return None


def bounded(receive, limit: int):
    """`receive`, raising BodyTooLarge once the body has grown past `limit` bytes."""
    received = 0

    async def receive_within_limit():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
        return message

    return receive_within_limit


def sent_as_read(response):
    """The parts of a sync streaming response, each read in the request's thread."""
    file = getattr(response, "file_to_stream", None)
    if file is not None:
        read = sync_to_async(file.read)

        async def blocks():
            while block := await read(STREAM_BLOCK_BYTES):
                yield block

        return blocks()
    parts, done = response.streaming_content, object()
    step = sync_to_async(next)

    async def each_part():
        while (part := await step(parts, done)) is not done:
            yield part

    return each_part()


class Handler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        view = view_class(scope)
        limit = body_limit(view)
        declared = declared_length(scope)
        try:
            if declared is not None and declared > limit:
                raise BodyTooLarge()
            if long_lived(view):
                await self.handle(scope, bounded(receive, limit), send)
            else:
                await super().__call__(scope, bounded(receive, limit), send)
        except BodyTooLarge:
            await self.refuse_body(scope, send, view, limit)

    async def send_response(self, response, send):
        if response.streaming and not response.is_async:
            # The file (or iterator) stays closed by response.close() as before.
            response.streaming_content = sent_as_read(response)
        await super().send_response(response, send)

    async def refuse_body(self, scope, send, view, limit: int) -> None:
        """413 in the API's error format; the rest of the body is never read."""
        logger.warning("refused a request body over %d bytes: %s", limit, scope["path"][:200])
        code = "file_too_large" if hasattr(view, "max_body_bytes") else "request_too_large"
        response = JsonResponse(
            error_body(code, f"The request body exceeds the limit of {limit} bytes."), status=413
        )
        response["Connection"] = "close"
        response["Content-Length"] = str(len(response.content))  # no chunked framing
        await self.send_response(response, send)


def get_asgi_application() -> Handler:
    """As django.core.asgi.get_asgi_application, with this handler."""
    django.setup(set_prefix=False)
    return Handler()
