"""Request bodies under the ASGI server: too large is refused before it is read (core.asgi).

Django's ASGI handler writes a whole body to a temporary file before any view runs,
so without the ceiling a declared 2 GB upload was read to disk before its 413, and a
chunked body had no bound. These talk HTTP/1.1 on a raw socket to uvicorn serving the
app in this process, so the client controls exactly what it sends.
"""

import json
import os
import socket
import time
import tracemalloc
import uuid
from pathlib import Path

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import put_on_task
from tests.server.sse import AsgiServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(settings):
    settings.REQUEST_BODY_MAX_BYTES = 64 * 1024
    settings.XRAY_MAX_UPLOAD_BYTES = 256 * 1024
    server = AsgiServer()
    yield server
    server.stop()


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def head(path: str, **headers) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response_of(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the answer (the server closes the connection after it)."""
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    headers, _, body = raw.partition(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in headers.lower():
        body, rest = b"", body
        while (size := int(rest.split(b"\r\n", 1)[0], 16)) > 0:
            start = rest.index(b"\r\n") + 2
            body, rest = body + rest[start : start + size], rest[start + size + 2 :]
    return status, json.loads(body) if body else {}


def test_a_declared_body_over_the_limit_is_refused_before_a_byte_of_it_is_read(server):
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(
            head(
                "/api/v1/tasks",
                Content_Type="application/json",
                Content_Length=2 * 1024**3,
            )
        )
        status, body = response_of(sock)  # no body was sent: only an early answer comes
    assert status == 413
    assert body["code"] == "request_too_large"
    assert time.monotonic() - started < 3


def test_a_chunked_body_is_cut_off_where_it_passes_the_limit(server):
    with connect(server) as sock:
        sock.sendall(
            head("/api/v1/tasks", Content_Type="application/json", Transfer_Encoding="chunked")
        )
        sent, chunk = 0, b"x" * 8192
        try:
            while sent < 4 * 1024 * 1024:  # far past the limit; the answer comes first
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = response_of(sock)
    assert status == 413
    assert body["code"] == "request_too_large"
    assert sent < 4 * 1024 * 1024


def test_an_xray_upload_may_be_as_large_as_an_xray_and_no_larger(server, settings):
    path = f"/api/v1/paramedics/{uuid.uuid4()}/xray"
    limit = settings.XRAY_MAX_UPLOAD_BYTES + 1024 * 1024  # the form's overhead
    with connect(server) as sock:
        sock.sendall(
            head(path, Content_Type="multipart/form-data; boundary=b", Content_Length=limit + 1)
        )
        status, body = response_of(sock)
    assert (status, body["code"]) == (413, "file_too_large")

    # Within it, the request reaches the view (no token: 401), its body read in full.
    body = b"x" * (settings.REQUEST_BODY_MAX_BYTES * 2)
    with connect(server) as sock:
        sock.sendall(
            head(
                path,
                Content_Type="multipart/form-data; boundary=b",
                Content_Length=len(body),
                Connection="close",
            )
            + body
        )
        status, answer = response_of(sock)
    assert (status, answer["code"]) == (401, "not_authenticated")


def test_a_small_body_is_served_as_before(server):
    body = json.dumps({"username": "nobody", "password": "wrong"}).encode()
    with connect(server) as sock:
        sock.sendall(
            head(
                "/api/v1/auth/token/",
                Content_Type="application/json",
                Content_Length=len(body),
                Connection="close",
            )
            + body
        )
        status, answer = response_of(sock)
    assert status == 401
    assert answer["code"] == "no_active_account"


def _open_temporary_files() -> int:
    """Files this process holds open that were deleted (spooled bodies, uploads)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd).endswith("(deleted)"))


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def test_a_body_cut_off_after_it_went_to_disk_leaves_no_file_open(server, settings):
    """Past FILE_UPLOAD_MAX_MEMORY_SIZE Django spools the body to a temporary file; a
    body cut off at its ceiling after that leaves none of them open."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 128 * 1024
    before = _open_temporary_files()
    path = f"/api/v1/paramedics/{uuid.uuid4()}/xray"
    ceiling = settings.XRAY_MAX_UPLOAD_BYTES + 1024 * 1024  # an X-ray and its form
    chunk = b"x" * 65536
    with connect(server) as sock:
        sock.sendall(
            head(path, Content_Type="multipart/form-data; boundary=b", Transfer_Encoding="chunked")
        )
        # Just past the ceiling, then read: nothing left unread makes the server reset.
        for _ in range(ceiling // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        try:
            status, body = response_of(sock)
        except ConnectionResetError:  # the 413 lost to a reset: the files are the point
            status, body = 413, {"code": "file_too_large"}
    assert (status, body["code"]) == (413, "file_too_large")
    assert _open_temporary_files() == before


def test_a_large_upload_is_received_on_disk_not_in_memory(server, settings, paramedic):
    """The body is spooled to a file past FILE_UPLOAD_MAX_MEMORY_SIZE (1 MiB; at 0
    Django's spool never rolled over): tracemalloc sees the server and this client."""
    settings.XRAY_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
    task = put_on_task(paramedic)
    boundary, size = "paramedic-bench", 24 * 1024 * 1024
    opening = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\n{task.pk}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield opening
        block = b"\x00" * (1024 * 1024)
        for _ in range(size // len(block)):
            yield block
        yield closing

    tracemalloc.start()
    try:
        response = httpx.post(
            f"{server.url}/api/v1/paramedics/{paramedic.pk}/xray",
            content=body(),
            headers={
                "Authorization": f"Bearer {AccessToken.for_user(paramedic.user)}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(opening) + size + len(closing)),
            },
            timeout=60,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 415  # zeros are no image: read whole, then refused
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 24 MiB body"
