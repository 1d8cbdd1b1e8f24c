"""core.asgi: which requests are served without a thread of their own, and the body
ceiling of each route (the behaviour under a real server: tests/server)."""

import asyncio
import io

import pytest
from django.http import FileResponse, StreamingHttpResponse

from core.asgi import STREAM_BLOCK_BYTES, body_limit, long_lived, sent_as_read, view_class
from tasks.views import TaskViewSet
from xrays.views import XrayUploadView


def is_long_lived(scope) -> bool:
    """What the handler asks of each request (core.asgi.Handler.__call__)."""
    return long_lived(view_class(scope))


ID = "5534b0d3-5f55-48a6-b561-022bb46b8a10"  # fixed: xdist workers must collect the same ids
STREAM = f"/api/v1/paramedics/{ID}/events"


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events/", STREAM, STREAM + "/"])
def test_the_event_streams_are_long_lived(path):
    assert is_long_lived({"type": "http", "path": path})


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/api/v1/tasks",
        f"/api/v1/paramedics/{ID}/tasks",
        "/admin/",
        "/api/v1/paramedics/not-a-uuid/events",
        "/api/v1/events\x00",
        "/api/v1/tasks/\udcff",
        "",
        "no-slash",
        "/" + "a" * 10_000,
    ],
)
def test_everything_else_is_handled_as_django_does(path):
    assert not is_long_lived({"type": "http", "path": path})


def test_a_root_path_is_not_part_of_the_route():
    scope = {"type": "http", "path": "/svc/api/v1/events", "root_path": "/svc"}
    assert is_long_lived(scope)


def test_routes_name_their_view_class_and_body_limit(settings):
    tasks = view_class({"type": "http", "path": "/api/v1/tasks"})
    upload = view_class({"type": "http", "path": f"/api/v1/paramedics/{ID}/xray"})
    assert (tasks, upload) == (TaskViewSet, XrayUploadView)
    assert body_limit(tasks) == body_limit(None) == settings.REQUEST_BODY_MAX_BYTES
    assert body_limit(upload) == settings.XRAY_MAX_UPLOAD_BYTES + 1024 * 1024


def collect(parts) -> list[bytes]:
    async def each():
        return [part async for part in parts]

    return asyncio.run(each())


def test_a_file_is_sent_a_block_at_a_time():
    size = 2 * STREAM_BLOCK_BYTES + 5
    response = FileResponse(io.BytesIO(b"x" * size))
    assert [len(block) for block in collect(sent_as_read(response))] == [
        STREAM_BLOCK_BYTES,
        STREAM_BLOCK_BYTES,
        5,
    ]


def test_other_sync_iterators_are_pulled_a_part_at_a_time():
    pulled = []

    def parts():
        for part in (b"a", b"b", b"c"):
            pulled.append(part)
            yield part

    response = StreamingHttpResponse(parts())

    async def first_only():
        stream = sent_as_read(response)
        first = await anext(stream)
        await stream.aclose()
        return first

    assert asyncio.run(first_only()) == b"a"
    assert pulled == [b"a"]  # nothing read ahead of what was sent
    assert collect(sent_as_read(StreamingHttpResponse(iter([b"x", "y"])))) == [b"x", b"y"]
