"""The reference device client in docs/device-upload.md works as documented.

The code block is taken from the document and run against a real server (the
service's own part URLs, filesystem mode): the link drops after the first part,
the same call with the same key resumes and sends only what is missing.
"""

import re
from pathlib import Path

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import put_on_task
from tests.xrays.samples import noise_png
from xrays.models import XrayImage, XrayUploadSession

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "device-upload.md"


def snippet() -> dict:
    code = re.search(r"```python\n(.*?)```", DOCUMENT.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCUMENT), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.mark.django_db(transaction=True)
def test_the_documented_client_uploads_and_resumes(live_server, paramedic, settings, tmp_path):
    settings.XRAY_UPLOAD_PART_BYTES = 64 * 1024  # several parts of a small image
    task = put_on_task(paramedic)
    image = tmp_path / "chest.png"
    image.write_bytes(noise_png(300, 200))
    api, token = f"{live_server.url}/api/v1", str(AccessToken.for_user(paramedic.user))
    client = snippet()
    sent = []
    real_put = httpx.put

    def flaky_put(url, **kwargs):
        if sent and not resumed:  # the first part went out, then the link dropped
            raise httpx.ConnectError("the link dropped")
        sent.append(url)
        return real_put(url, **kwargs)

    client["httpx"] = type("httpx", (), {"put": staticmethod(flaky_put), "Client": httpx.Client})
    resumed = False
    with pytest.raises(httpx.ConnectError):
        client["send_xray"](api, token, str(paramedic.id), str(task.id), str(image), "dev-42")

    session = XrayUploadSession.objects.get()
    assert session.part_count >= 3
    held_after_drop = len(sent)
    resumed = True
    record = client["send_xray"](api, token, str(paramedic.id), str(task.id), str(image), "dev-42")

    assert record["id"] == str(XrayImage.objects.get().pk)
    assert record["size_bytes"] == image.stat().st_size
    assert XrayUploadSession.objects.get().state == "completed"  # the same session
    assert 1 <= held_after_drop < session.part_count
    assert len(sent) == session.part_count  # the resume sent only what was missing
