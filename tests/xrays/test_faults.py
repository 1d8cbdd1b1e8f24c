"""Storage outages and racing retries: nothing lost, nothing half-written (design §7)."""

import pytest

from tests.factories import put_on_task
from tests.helpers import client_for, in_parallel, upload
from tests.s3 import SeaweedServer
from tests.xrays.samples import dicom_bytes, image_bytes, noise_png
from xrays.models import XrayImage


@pytest.fixture
def private_s3(tmp_path, settings):
    """An S3 server of this test's own, so stopping it disturbs no other test."""
    server = SeaweedServer(tmp_path / "weed").start()
    settings.STORAGES = {**settings.STORAGES, "default": server.storage_settings()}
    yield server
    server.stop()


def bucket_keys(server) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=server.bucket).get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.mark.s3
def test_storage_down_answers_503_and_records_nothing(private_s3, paramedic, client):
    task = put_on_task(paramedic)
    paramedic_client = client_for(paramedic.user)
    assert upload(paramedic_client, paramedic, task, image_bytes("PNG")).status_code == 201

    private_s3.stop()
    response = upload(paramedic_client, paramedic, task, dicom_bytes(), key="retry-1")
    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert XrayImage.objects.count() == 1
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"] == "unavailable"

    # Storage is back: the client's retry with the same key goes through, once.
    private_s3.start()
    retry = upload(paramedic_client, paramedic, task, dicom_bytes(), key="retry-1")
    assert retry.status_code == 201, retry.content
    assert XrayImage.objects.count() == 2
    assert sorted(bucket_keys(private_s3)) == sorted(x.file.name for x in XrayImage.objects.all())


@pytest.mark.s3
def test_a_storage_refusal_is_logged_with_its_s3_code(s3_server, settings, paramedic, caplog):
    """Support reads why storage failed (S3's code and status), not just "ClientError"."""
    storage = s3_server.storage_settings()
    storage["OPTIONS"] = {**storage["OPTIONS"], "secret_key": "not-the-secret"}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    task = put_on_task(paramedic)
    with caplog.at_level("WARNING", logger="xrays"):
        response = upload(client_for(paramedic.user), paramedic, task, image_bytes("PNG"))
    assert (response.status_code, response.json()["code"]) == (503, "storage_unavailable")
    assert "SignatureDoesNotMatch (HTTP 403)" in caplog.text
    assert not XrayImage.objects.exists()


@pytest.mark.s3
def test_a_large_upload_goes_up_in_parts_and_comes_back_intact(s3_storage, paramedic):
    """Over the multipart threshold (8 MB): streamed from disk, stored byte for byte."""
    import hashlib
    import urllib.request

    task = put_on_task(paramedic)
    content = noise_png(2200, 1600)  # about 10.5 MB, incompressible
    assert len(content) > 9 * 1024 * 1024
    paramedic_client = client_for(paramedic.user)
    response = upload(paramedic_client, paramedic, task, content)
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()

    url = paramedic_client.get(f"/api/v1/xrays/{response.json()['id']}").json()["download_url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4, path-style
    assert f"/{s3_storage.bucket}/xrays/" in url
    with urllib.request.urlopen(url, timeout=30) as fetched:  # noqa: S310 - local S3
        assert fetched.read() == content


@pytest.mark.s3
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_retries_store_one_file_and_one_row(s3_storage, paramedic):
    task = put_on_task(paramedic)
    content = dicom_bytes("MR_small.dcm")

    def retry(i):
        return upload(client_for(paramedic.user), paramedic, task, content, key="flaky-net")

    responses = in_parallel(6, retry)

    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert XrayImage.objects.count() == 1
    assert bucket_keys(s3_storage) == [XrayImage.objects.get().file.name]


@pytest.mark.s3
def test_storage_down_while_completing_answers_503_and_the_upload_resumes(
    private_s3, paramedic, settings
):
    """A resumable upload survives its storage going away (design §13)."""
    import hashlib

    from tests.helpers import put_part
    from xrays.models import UploadState, XrayUploadSession

    task = put_on_task(paramedic)
    content = dicom_bytes("MR_small.dcm")
    device = client_for(paramedic.user)
    session = device.post(
        f"/api/v1/paramedics/{paramedic.id}/xray-uploads",
        {"task": str(task.id), "size": len(content), "sha256": hashlib.sha256(content).hexdigest()},
    ).json()
    assert put_part(session["parts"][0]["url"], content)[0] == 200

    private_s3.stop()
    down = device.post(f"/api/v1/xray-uploads/{session['id']}/complete")
    assert (down.status_code, down.json()["code"]) == (503, "storage_unavailable")
    assert XrayUploadSession.objects.get().state == UploadState.UPLOADING  # given back
    assert not XrayImage.objects.exists()

    private_s3.start()
    done = device.post(f"/api/v1/xray-uploads/{session['id']}/complete")
    assert done.status_code == 201, done.content
    assert bucket_keys(private_s3) == [XrayImage.objects.get().file.name]
