"""X-ray upload, validation, idempotency and download (design §7).

The round-trip tests run twice: on the filesystem (embedded default) and on a
real S3 server (SeaweedFS started by the test setup).
"""

import hashlib
import logging
import re
import urllib.error
import urllib.request

import pytest

from tests.factories import put_on_task
from tests.helpers import client_for, stored_keys, upload
from tests.xrays.samples import (
    DICOM_FILES,
    bad_inputs,
    dicom_bytes,
    dicom_with,
    image_bytes,
    large_dicom,
    nested_sequences,
)
from xrays.models import XrayImage


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request):
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    return None


@pytest.fixture
def task(paramedic):
    return put_on_task(paramedic, consultation_id="consult-42")


def fetch(url: str, client=None) -> tuple[int, bytes]:
    """GET a download URL: our own view through the test client, S3 over HTTP."""
    if url.startswith("http://testserver"):
        response = (client or client_for(None)).get(url.removeprefix("http://testserver"))
        body = b"".join(response.streaming_content) if response.status_code == 200 else b""
        return response.status_code, body
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local S3
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


class TestRoundTrip:
    @pytest.mark.parametrize("sample", DICOM_FILES)
    def test_it_stores_dicom_with_tags_and_serves_it_back(
        self, storage, paramedic_client, paramedic, task, sample
    ):
        content = dicom_bytes(sample)
        response = upload(paramedic_client, paramedic, task, content, name="x.png")

        assert response.status_code == 201, response.content
        data = response.json()
        assert data["format"] == "dicom"
        assert data["sha256"] == hashlib.sha256(content).hexdigest()
        assert data["size_bytes"] == len(content)
        assert data["consultation_id"] == "consult-42"
        assert data["dicom"]["modality"]
        assert data["dicom"]["study_instance_uid"].startswith("1.")
        record = XrayImage.objects.get(pk=data["id"])
        assert re.fullmatch(r"xrays/\d{4}/\d{2}/[0-9a-f-]{36}\.dcm", record.file.name)

        detail = paramedic_client.get(f"/api/v1/xrays/{data['id']}").json()
        status, body = fetch(detail["download_url"])
        assert status == 200
        assert body == content

    def test_a_dicom_with_pixels_larger_than_the_header_budget_is_accepted(
        self, paramedic_client, paramedic, task
    ):
        # Regression: the sequence-depth walk read deferred pixel data through the
        # 256 KiB header budget, refusing every real-sized DICOM as corrupt_image.
        content = large_dicom(2 * 1024 * 1024)
        response = upload(paramedic_client, paramedic, task, content)
        assert response.status_code == 201, response.content
        assert (response.json()["width"], response.json()["height"]) == (2048, 512)

    @pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("JPEG", "jpg")])
    def test_it_stores_images_with_dimensions(
        self, storage, paramedic_client, paramedic, task, fmt, ext
    ):
        content = image_bytes(fmt, size=(640, 480))
        response = upload(
            paramedic_client,
            paramedic,
            task,
            content,
            name="photo.dcm",
            body_part="left wrist",
            notes="swelling",
            captured_at="2026-11-26T10:00:00Z",
            consultation_id="other-consult",
        )
        assert response.status_code == 201, response.content
        data = response.json()
        assert (data["format"], data["width"], data["height"]) == (fmt.lower(), 640, 480)
        assert data["dicom"] is None
        assert data["body_part"] == "left wrist"
        assert data["consultation_id"] == "other-consult"
        assert data["captured_at"] == "2026-11-26T10:00:00Z"
        assert XrayImage.objects.get().file.name.endswith(f".{ext}")
        assert len(stored_keys()) == 1

    def test_the_download_url_is_signed_and_short_lived(
        self, storage, paramedic_client, paramedic, task, settings
    ):
        content = image_bytes("PNG")
        xray_id = upload(paramedic_client, paramedic, task, content).json()["id"]
        url = paramedic_client.get(f"/api/v1/xrays/{xray_id}").json()["download_url"]

        tampered = re.sub(r"(Signature|token)=([^&]{4})", r"\1=AAAA", url)
        assert tampered != url
        status, _ = fetch(tampered)
        assert status in (403, 404)
        other = XrayImage.objects.get(pk=xray_id)
        assert str(other.pk) in url or "xrays/" in url


class TestIdempotency:
    def test_a_retry_with_the_same_key_returns_the_first_record(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("PNG")
        first = upload(paramedic_client, paramedic, task, content, key="k-1")
        again = upload(paramedic_client, paramedic, task, content, key="k-1")

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert XrayImage.objects.count() == 1
        assert len(stored_keys()) == 1

    def test_the_same_key_with_other_content_is_422(self, paramedic_client, paramedic, task):
        upload(paramedic_client, paramedic, task, image_bytes("PNG"), key="k-2")
        response = upload(paramedic_client, paramedic, task, image_bytes("JPEG"), key="k-2")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert XrayImage.objects.count() == 1

    @pytest.mark.parametrize(
        "changed",
        [
            {"consultation_id": "consult-other"},
            {"body_part": "HAND"},
            {"notes": "right side"},
            {"captured_at": "2026-12-07T09:00:01Z"},
            {"captured_at": None},  # omitted
        ],
        ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
    )
    def test_the_same_key_with_any_other_field_is_422(
        self, paramedic_client, paramedic, task, changed
    ):
        """The key covers the whole request (the same bytes are not enough)."""
        content = image_bytes("PNG")
        fields = {
            "consultation_id": "consult-42",
            "body_part": "CHEST",
            "notes": "left side",
            "captured_at": "2026-12-07T09:00:00Z",
        }
        first = upload(paramedic_client, paramedic, task, content, key="k-3", **fields)
        again = upload(paramedic_client, paramedic, task, content, key="k-3", **fields)
        assert (first.status_code, again.status_code) == (201, 200)
        changed = {k: v for k, v in {**fields, **changed}.items() if v is not None}
        response = upload(paramedic_client, paramedic, task, content, key="k-3", **changed)
        assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
        assert XrayImage.objects.count() == 1

    def test_the_same_image_for_the_same_task_is_stored_once(
        self, paramedic_client, paramedic, task
    ):
        content = dicom_bytes()
        first = upload(paramedic_client, paramedic, task, content)
        again = upload(paramedic_client, paramedic, task, content)
        assert (first.status_code, again.status_code) == (201, 200)
        assert XrayImage.objects.count() == 1
        assert len(stored_keys()) == 1


class TestRejections:
    @pytest.mark.parametrize("case", sorted(bad_inputs()))
    def test_it_rejects_bad_input_and_stores_nothing(
        self, storage, paramedic_client, paramedic, task, case
    ):
        content, status, code = bad_inputs()[case]
        response = upload(paramedic_client, paramedic, task, content, name="xray.png")

        assert response.status_code == status, response.content
        assert response.json()["code"] == code
        assert not XrayImage.objects.exists()
        assert stored_keys() == []

    def test_a_nested_dicom_is_refused_quietly(
        self, storage, paramedic_client, paramedic, task, caplog
    ):
        content, _, _ = bad_inputs()["dicom_nested_sequences"]
        with caplog.at_level(logging.DEBUG):
            response = upload(paramedic_client, paramedic, task, content)
        assert response.status_code == 400
        assert response.json()["code"] == "corrupt_image"
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
        assert sum(len(r.getMessage()) for r in caplog.records) < 2000

    def test_dicom_nesting_a_few_levels_is_accepted(
        self, storage, paramedic_client, paramedic, task
    ):
        for content in (
            dicom_with(nested_sequences(3)),
            dicom_with(nested_sequences(3, defined_length=True)),
        ):
            response = upload(paramedic_client, paramedic, task, content)
            assert response.status_code == 201, response.content

    def test_a_streamed_body_over_the_limit_is_413(
        self, paramedic_client, paramedic, task, settings
    ):
        settings.XRAY_MAX_UPLOAD_BYTES = 2000
        response = upload(paramedic_client, paramedic, task, dicom_bytes())
        assert response.status_code == 413
        assert response.json()["code"] == "file_too_large"
        assert not XrayImage.objects.exists()
        assert stored_keys() == []

    def test_a_declared_size_over_the_limit_is_413_before_reading(
        self, paramedic_client, paramedic, task, settings
    ):
        settings.XRAY_MAX_UPLOAD_BYTES = 1000
        response = paramedic_client.generic(
            "POST",
            f"/api/v1/paramedics/{paramedic.id}/xray",
            b"",
            content_type="multipart/form-data; boundary=xyz",
            CONTENT_LENGTH=str(50 * 1024 * 1024 * 1024),  # a 50 GB claim
        )
        assert response.status_code == 413
        assert response.json()["code"] == "file_too_large"

    def test_missing_fields_are_400(self, paramedic_client, paramedic, task):
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/xray", {}, format="multipart"
        )
        assert response.status_code == 400
        assert {"image", "task"} <= response.json()["errors"].keys()

    def test_json_body_is_415(self, paramedic_client, paramedic, task):
        response = paramedic_client.post(
            f"/api/v1/paramedics/{paramedic.id}/xray", {"task": str(task.id)}, format="json"
        )
        assert response.status_code == 415

    def test_a_task_that_is_not_the_paramedics_is_404(
        self, paramedic_client, paramedic, other_paramedic
    ):
        theirs = put_on_task(other_paramedic)
        response = upload(paramedic_client, paramedic, theirs, image_bytes("PNG"))
        assert response.status_code == 404  # as for a task that does not exist
        assert response.json()["code"] == "not_found"
        assert not XrayImage.objects.exists()

    def test_an_unknown_task_is_404(self, paramedic_client, paramedic, task):
        task.pk = "00000000-0000-0000-0000-000000000000"
        response = upload(paramedic_client, paramedic, task, image_bytes("PNG"))
        assert response.status_code == 404


class TestFailures:
    def test_a_failed_insert_removes_the_stored_file(
        self, storage, paramedic_client, paramedic, task, monkeypatch
    ):
        """The file goes up first; if its row cannot be written, the file is removed."""
        from xrays import services

        def broken_event(xray, kind):
            raise RuntimeError("database went away mid-transaction")

        monkeypatch.setattr(services, "record_xray_event", broken_event)
        paramedic_client.raise_request_exception = False
        response = upload(paramedic_client, paramedic, task, image_bytes("PNG"))

        assert response.status_code == 500
        assert response.json()["code"] == "server_error"
        assert not XrayImage.objects.exists()
        assert stored_keys() == []
