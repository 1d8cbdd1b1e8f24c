"""Under the ASGI server a sync streaming response is sent as it is read (core.asgi).

Django serves a sync streaming response under ASGI by listing it first, so a large
X-ray sat in the worker's memory whole before its first byte left. Measured with
tracemalloc around a 48 MiB download through uvicorn in this process.
"""

import hashlib
import os
import tracemalloc
import warnings
from pathlib import Path

import httpx
import pytest
from django.contrib.staticfiles import finders
from django.core.files import File
from django.core.files.storage import default_storage

from tests.factories import put_on_task
from tests.server.sse import AsgiServer
from xrays.downloads import download_link
from xrays.models import XrayImage

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 48 * 1024 * 1024


@pytest.fixture
def server():
    server = AsgiServer()
    yield server
    server.stop()


@pytest.fixture
def large_xray(paramedic, tmp_path):
    path, digest = tmp_path / "large.dcm", hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    task = put_on_task(paramedic)
    with path.open("rb") as source:
        name = default_storage.save("xrays/2026/12/large.dcm", File(source))
    xray = XrayImage.objects.create(
        paramedic=paramedic,
        task=task,
        uploaded_by=paramedic.user,
        file=name,
        format="dicom",
        content_type="application/dicom",
        size_bytes=SIZE,
        sha256=digest.hexdigest(),
    )
    return xray


def test_a_large_download_never_sits_in_memory_whole(server, large_xray):
    url = server.url + download_link(large_xray).url
    digest, received = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with httpx.stream("GET", url, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            assert "attachment" in response.headers["content-disposition"]
            for block in response.iter_raw(256 * 1024):
                digest.update(block)
                received += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == SIZE
    assert digest.hexdigest() == large_xray.sha256
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 48 MiB file"


def test_a_static_file_is_sent_as_read(server):
    """WhiteNoise's responses are sync files too: no list, no warning, every byte."""
    expected = Path(finders.find("admin/css/base.css")).read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = httpx.get(server.url + "/static/admin/css/base.css", timeout=10)
    assert response.status_code == 200
    assert response.content == expected
    assert not [w for w in caught if "iterators" in str(w.message)]
