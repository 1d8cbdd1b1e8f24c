"""The Django internals core.asgi relies on, pinned: a Django upgrade that changes any
of them fails here, so core.asgi is read against the new code before it ships.

Each entry is the function's source as of the Django release named; when one fails,
read the new source next to core/asgi.py (its docstring lists what it relies on and
why), adapt core/asgi.py if needed, and record the new digest here.
"""

import hashlib
import inspect

import django
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, StreamingHttpResponse

PINNED_RELEASE = "5.2.19"
PINNED = {
    "ASGIHandler.__call__": (ASGIHandler.__call__, "f756809e9c9308dc"),
    "ASGIHandler.handle": (ASGIHandler.handle, "98faeb5bef800331"),
    "ASGIHandler.read_body": (ASGIHandler.read_body, "cf4aa904631d5410"),
    "ASGIHandler.send_response": (ASGIHandler.send_response, "77eda2b08689b44e"),
    "ASGIHandler.chunk_bytes": (ASGIHandler.chunk_bytes, "6c045731cd77bd2d"),
    "FileResponse._set_streaming_content": (
        FileResponse._set_streaming_content,
        "730466eca8510b36",
    ),
    "StreamingHttpResponse.streaming_content": (
        StreamingHttpResponse.streaming_content.fget,
        "cdb912493f797f72",
    ),
    "StreamingHttpResponse.__aiter__": (StreamingHttpResponse.__aiter__, "7b36f5b3e5de1837"),
}


@pytest.mark.parametrize("name", PINNED)
def test_the_django_code_core_asgi_relies_on_is_unchanged(name):
    function, digest = PINNED[name]
    found = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert found == digest, (
        f"{name} changed in Django {django.get_version()} (pinned at {PINNED_RELEASE}): "
        "read it against core/asgi.py, then update the digest in this test"
    )


def test_the_request_body_spool_is_sized_by_the_setting():
    """What lets core.asgi leave read_body to Django: it spools by this setting."""
    assert "settings.FILE_UPLOAD_MAX_MEMORY_SIZE" in inspect.getsource(ASGIHandler.read_body)
