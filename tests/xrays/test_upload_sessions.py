"""Resumable X-ray uploads straight to storage (design §13).

Every behaviour test runs twice: on the filesystem (embedded default: the part
URLs are the service's own) and on a real S3 server (SeaweedFS: presigned URLs
that the server itself checks). The device's side is played as a device would:
parts PUT to the URLs handed out, with no Authorization header.
"""

import functools
import hashlib
import http.client
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from integrations.models import OutboxEvent
from tests.factories import ParamedicFactory, put_on_task
from tests.helpers import API, client_for, in_parallel, put_part, stored_keys, upload
from tests.xrays.samples import dicom_bytes, image_bytes, large_dicom, noise_png
from xrays.jobs import sweep_uploads
from xrays.models import UploadState, XrayImage, XrayUploadSession
from xrays.multipart import multipart_store
from xrays.sessions import upload_sessions_sweep
from xrays.validation import inspect_image

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part that is not the last


@functools.cache
def three_part_png() -> bytes:
    """A real PNG of about 10.5 MB (random pixels do not compress): three 5 MiB parts."""
    content = noise_png(2200, 1600)
    assert 2 * PART < len(content) < 3 * PART
    return content


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request, settings):
    settings.XRAY_UPLOAD_PART_BYTES = PART
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    return None


@pytest.fixture
def task(paramedic):
    return put_on_task(paramedic, consultation_id="consult-13")


def create(client, paramedic, task, content: bytes, *, key=None, **fields):
    body = {
        "task": str(task.id),
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        **fields,
    }
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"{API}/paramedics/{paramedic.id}/xray-uploads", body, **headers)


def piece(content: bytes, part: dict) -> bytes:
    start = (part["number"] - 1) * PART
    return content[start : start + part["size"]]


def send_parts(session: dict, content: bytes) -> list[int]:
    """PUT every part the session lists; the numbers sent."""
    for part in session["parts"]:
        status, etag = put_part(part["url"], piece(content, part))
        assert status == 200, (part["number"], status)
        assert etag.strip('"')
    return [p["number"] for p in session["parts"]]


def complete(client, session_id, **body):
    return client.post(f"{API}/xray-uploads/{session_id}/complete", body or None)


def storage_holds_nothing(server=None) -> bool:
    """No object under xrays/ and no multipart upload in progress (S3), or no part files."""
    if server is not None:
        client = server.client()
        objects = client.list_objects_v2(Bucket=server.bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=server.bucket).get("Uploads", [])
        return not objects and not uploads
    return stored_keys() == [] and not list(multipart_store().pending_uploads(""))


class TestRoundTrip:
    def test_it_takes_three_parts_verifies_them_and_records_the_image(
        self, storage, paramedic_client, paramedic, task
    ):
        content = three_part_png()
        created = create(paramedic_client, paramedic, task, content, body_part="chest")
        assert created.status_code == 201, created.content
        session = created.json()
        assert (session["state"], session["part_size"], session["part_count"]) == (
            "uploading",
            PART,
            3,
        )
        assert [p["number"] for p in session["parts"]] == [1, 2, 3]
        assert session["received_parts"] == [] and session["xray"] is None

        send_parts(session, content)
        status = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        assert [(p["number"], p["size"]) for p in status["received_parts"]] == [
            (1, PART),
            (2, PART),
            (3, len(content) - 2 * PART),
        ]
        assert status["parts"] == []  # nothing left to send

        done = complete(paramedic_client, session["id"])
        assert done.status_code == 201, done.content
        record = done.json()
        assert record["sha256"] == hashlib.sha256(content).hexdigest()
        assert (record["format"], record["width"], record["height"]) == ("png", 2200, 1600)
        assert (record["size_bytes"], record["body_part"]) == (len(content), "chest")
        assert record["consultation_id"] == "consult-13"
        xray = XrayImage.objects.get()
        assert xray.file.name.endswith(".png")  # renamed from the provisional .dcm key
        assert OutboxEvent.objects.filter(aggregate_id=xray.pk).exists()

        detail = paramedic_client.get(f"/api/v1/xrays/{record['id']}").json()
        with default_storage.open(xray.file.name, "rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == record["sha256"]
        assert detail["download_url"]
        assert stored_keys() == [xray.file.name]  # the parts are gone, one object left

        after = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        assert (after["state"], after["xray"], after["parts"]) == ("completed", record["id"], [])

    def test_a_dicom_keeps_its_key_and_tags(self, storage, paramedic_client, paramedic, task):
        content = dicom_bytes("MR_small.dcm")
        session = create(paramedic_client, paramedic, task, content).json()
        assert session["part_count"] == 1
        send_parts(session, content)
        record = complete(paramedic_client, session["id"]).json()
        assert record["format"] == "dicom"
        assert record["dicom"]["study_instance_uid"].startswith("1.")
        xray = XrayImage.objects.get()
        assert xray.file.name == XrayUploadSession.objects.get().storage_key

    def test_completing_twice_answers_the_same_record(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("JPEG")
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        first = complete(paramedic_client, session["id"])
        again = complete(paramedic_client, session["id"])
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json() == again.json()
        assert XrayImage.objects.count() == 1
        assert OutboxEvent.objects.filter(kind="xray.uploaded").count() == 1

    def test_the_same_image_already_recorded_for_the_task_is_the_answer(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("PNG", color=(1, 2, 3))
        first = upload(paramedic_client, paramedic, task, content)  # design §7, multipart
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        again = complete(paramedic_client, session["id"])
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert stored_keys() == [XrayImage.objects.get().file.name]


class TestResume:
    def test_after_a_dropped_connection_only_the_missing_parts_are_sent(
        self, storage, paramedic_client, paramedic, task, request
    ):
        content = three_part_png()
        session = create(paramedic_client, paramedic, task, content).json()
        first, second, _third = session["parts"]
        assert put_part(first["url"], piece(content, first))[0] == 200
        url = second["url"]
        if storage is None:
            # The service's own part URL, on a real server: the socket really drops.
            live = request.getfixturevalue("live_server")
            url = url.replace("http://testserver", live.url)
        sent = drop_mid_part(url, piece(content, second))  # LTE gone at 50 %

        resumed = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        assert [p["number"] for p in resumed["received_parts"]] == [1]
        assert [p["number"] for p in resumed["parts"]] == [2, 3]  # fresh URLs, missing only
        resent = send_parts(resumed, content)

        assert resent == [2, 3]
        assert sent < second["size"]
        done = complete(paramedic_client, session["id"])
        assert done.status_code == 201, done.content
        assert done.json()["sha256"] == hashlib.sha256(content).hexdigest()

    def test_completing_with_parts_missing_is_409_and_the_session_stays_open(
        self, storage, paramedic_client, paramedic, task
    ):
        content = three_part_png()
        session = create(paramedic_client, paramedic, task, content).json()
        put_part(session["parts"][0]["url"], piece(content, session["parts"][0]))
        response = complete(paramedic_client, session["id"])
        assert response.status_code == 409
        assert response.json()["code"] == "upload_incomplete"
        assert XrayUploadSession.objects.get().state == UploadState.UPLOADING
        assert not XrayImage.objects.exists()

    def test_a_parts_list_that_is_not_what_storage_holds_is_409(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("PNG")
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        response = complete(paramedic_client, session["id"], parts=[{"number": 1, "etag": "x"}])
        assert response.status_code == 409
        assert response.json()["code"] == "parts_mismatch"
        status = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        etag = status["received_parts"][0]["etag"]
        good = complete(paramedic_client, session["id"], parts=[{"number": 1, "etag": etag}])
        assert good.status_code == 201, good.content


def drop_mid_part(url: str, data: bytes) -> int:
    """Start a part's PUT and cut the connection halfway; the bytes that went out."""
    half = data[: len(data) // 2]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(half)
    conn.sock.close()  # the connection drops
    time.sleep(0.3)  # let the server notice
    return len(half)


class TestRefusals:
    def test_a_wrong_sha256_is_422_and_leaves_no_object(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("PNG")
        session = create(paramedic_client, paramedic, task, content, sha256="ab" * 32).json()
        send_parts(session, content)
        response = complete(paramedic_client, session["id"])
        assert response.status_code == 422
        assert response.json()["code"] == "checksum_mismatch"
        assert not XrayImage.objects.exists()
        assert storage_holds_nothing(storage)
        state = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        assert state["state"] == "failed"
        assert state["failure"]["code"] == "checksum_mismatch"
        again = complete(paramedic_client, session["id"])  # the same refusal, nothing new
        assert (again.status_code, again.json()["code"]) == (422, "checksum_mismatch")

    @pytest.mark.parametrize(
        ("content", "status", "code"),
        [
            (b"a PNG that is really text\n" * 40, 415, "unsupported_media_type"),
            (image_bytes("PNG")[:300], 400, "corrupt_image"),
        ],
        ids=["text_named_png", "truncated_png"],
    )
    def test_content_that_is_not_an_accepted_image_is_refused_and_removed(
        self, storage, paramedic_client, paramedic, task, content, status, code
    ):
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        response = complete(paramedic_client, session["id"])
        assert response.status_code == status, response.content
        assert response.json()["code"] == code
        assert not XrayImage.objects.exists()
        assert storage_holds_nothing(storage)
        assert XrayUploadSession.objects.get().failure_code == code

    def test_a_size_over_the_limit_is_413_before_any_storage_call(
        self, paramedic_client, paramedic, task, settings
    ):
        # Storage that cannot answer: reaching it would be a 503, not a 413.
        settings.STORAGES = {**settings.STORAGES, "default": dead_s3()}
        body = {"task": str(task.id), "size": 200 * MIB + 1, "sha256": "0" * 64}
        response = paramedic_client.post(f"{API}/paramedics/{paramedic.id}/xray-uploads", body)
        assert response.status_code == 413
        assert response.json()["code"] == "file_too_large"
        body["size"] = 1000
        within = paramedic_client.post(f"{API}/paramedics/{paramedic.id}/xray-uploads", body)
        assert (within.status_code, within.json()["code"]) == (503, "storage_unavailable")
        assert not XrayUploadSession.objects.exists()

    def test_an_unknown_or_foreign_task_is_404(self, paramedic_client, paramedic, other_paramedic):
        theirs = put_on_task(other_paramedic)
        response = create(paramedic_client, paramedic, theirs, b"x")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert not XrayUploadSession.objects.exists()

    @pytest.mark.parametrize(
        "change",
        [
            {"sha256": "xyz" * 21 + "a"},
            {"sha256": "ab"},
            {"size": 0},
            {"size": "100"},
            {"size": True},
            {"size": 1.5},
            {"task": 5},
        ],
    )
    def test_invalid_declarations_are_400(self, paramedic_client, paramedic, task, change):
        body = {"task": str(task.id), "size": 100, "sha256": "0" * 64, **change}
        response = paramedic_client.post(
            f"{API}/paramedics/{paramedic.id}/xray-uploads", body, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert not XrayUploadSession.objects.exists()


def dead_s3() -> dict:
    """STORAGES['default'] for an S3 endpoint where nothing listens."""
    from tests.processes import free_port
    from tests.s3 import SeaweedServer

    server = SeaweedServer.__new__(SeaweedServer)
    server.bucket, server.s3_port = "nowhere", free_port()
    return server.storage_settings()


class TestPartUrls:
    def test_a_url_for_another_session_or_past_its_life_is_refused(
        self, storage, paramedic_client, paramedic, task, settings
    ):
        content = image_bytes("PNG")
        mine = create(paramedic_client, paramedic, task, content).json()
        other = create(paramedic_client, paramedic, task, image_bytes("JPEG")).json()

        # My part URL pointed at the other session: the signature no longer matches.
        forged = retarget(mine["parts"][0]["url"], mine, other)
        assert put_part(forged, content)[0] == 403

        settings.XRAY_UPLOAD_PART_URL_SECONDS = 1
        short_lived = paramedic_client.get(f"{API}/xray-uploads/{mine['id']}").json()
        time.sleep(2.2)
        assert put_part(short_lived["parts"][0]["url"], content)[0] == 403
        # Nothing was stored by either attempt.
        assert (
            paramedic_client.get(f"{API}/xray-uploads/{mine['id']}").json()["received_parts"] == []
        )
        assert (
            paramedic_client.get(f"{API}/xray-uploads/{other['id']}").json()["received_parts"] == []
        )

    def test_a_part_of_the_wrong_size_is_refused(self, paramedic_client, paramedic, task):
        content = image_bytes("PNG")
        session = create(paramedic_client, paramedic, task, content).json()
        url = session["parts"][0]["url"]
        assert put_part(url, content + b"extra")[0] == 413
        assert put_part(url, content[:-1])[0] == 400
        assert put_part(url, content)[0] == 200


def retarget(url: str, mine: dict, other: dict) -> str:
    """The same URL with the other session's identity put in (upload id or path)."""
    parts = urlsplit(url)
    if "uploadId" in parts.query:  # S3: the other session's upload id
        other_session = XrayUploadSession.objects.get(pk=other["id"])
        query = parse_qs(parts.query)
        query["uploadId"] = [other_session.storage_upload_id]
        path = parts.path.replace(
            XrayUploadSession.objects.get(pk=mine["id"]).storage_key,
            other_session.storage_key,
        )
        return urlunsplit(parts._replace(path=path, query=urlencode(query, doseq=True)))
    return url.replace(mine["id"], other["id"])


class TestAbortAndIdempotency:
    def test_abort_drops_the_parts_and_ends_the_session(
        self, storage, paramedic_client, paramedic, task
    ):
        content = three_part_png()
        session = create(paramedic_client, paramedic, task, content).json()
        put_part(session["parts"][0]["url"], piece(content, session["parts"][0]))
        aborted = paramedic_client.delete(f"{API}/xray-uploads/{session['id']}")
        assert aborted.status_code == 200
        assert aborted.json()["state"] == "aborted"
        assert paramedic_client.delete(f"{API}/xray-uploads/{session['id']}").status_code == 200
        assert storage_holds_nothing(storage)
        later = put_part(session["parts"][1]["url"], piece(content, session["parts"][1]))[0]
        assert later in (404, 409)  # S3: NoSuchUpload; the service: upload_closed
        response = complete(paramedic_client, session["id"])
        assert (response.status_code, response.json()["code"]) == (409, "upload_closed")

    def test_a_repeated_create_with_the_key_is_the_same_session(
        self, storage, paramedic_client, paramedic, task
    ):
        content = image_bytes("PNG")
        first = create(paramedic_client, paramedic, task, content, key="dev-1")
        again = create(paramedic_client, paramedic, task, content, key="dev-1")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert XrayUploadSession.objects.count() == 1
        other = create(paramedic_client, paramedic, task, image_bytes("JPEG"), key="dev-1")
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")

    FIELDS = {
        "consultation_id": "consult-13",
        "body_part": "CHEST",
        "notes": "left side",
        "captured_at": "2026-12-07T09:00:00Z",
    }

    @pytest.mark.parametrize(
        "changed",
        [
            {"consultation_id": "consult-other"},
            {"body_part": "HAND"},
            {"notes": "right side"},
            {"captured_at": "2026-12-07T09:00:01Z"},
            {"captured_at": None},  # omitted
            {"notes": None},
        ],
        ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
    )
    def test_the_key_with_any_other_field_is_422(self, paramedic_client, paramedic, task, changed):
        """The key covers the whole request: a repeat that asks for something else is
        refused, never answered with the first session (which would drop its fields)."""
        content = image_bytes("PNG")
        first = create(paramedic_client, paramedic, task, content, key="dev-2", **self.FIELDS)
        same = create(
            paramedic_client,
            paramedic,
            task,
            content,
            key="dev-2",
            **{**self.FIELDS, "captured_at": "2026-12-07T10:00:00+01:00"},  # the same instant
        )
        assert (first.status_code, same.status_code) == (201, 200)
        fields = {k: v for k, v in {**self.FIELDS, **changed}.items() if v is not None}
        other = create(paramedic_client, paramedic, task, content, key="dev-2", **fields)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert XrayUploadSession.objects.count() == 1

    def test_an_omitted_consultation_is_the_tasks(self, paramedic_client, paramedic, task):
        content = image_bytes("PNG")
        first = create(paramedic_client, paramedic, task, content, key="dev-3")
        named = create(
            paramedic_client, paramedic, task, content, key="dev-3", consultation_id="consult-13"
        )
        assert (first.status_code, named.status_code) == (201, 200)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_devices_racing_complete_make_one_record(storage, paramedic):
    task = put_on_task(paramedic)
    content = three_part_png()
    session = create(client_for(paramedic.user), paramedic, task, content).json()
    send_parts(session, content)

    responses = in_parallel(2, lambda i: complete(client_for(paramedic.user), session["id"]))

    assert sorted(r.status_code for r in responses) == [200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert XrayImage.objects.count() == 1
    assert stored_keys() == [XrayImage.objects.get().file.name]


class TestSweep:
    def test_it_expires_stale_sessions_and_removes_orphans(
        self, storage, paramedic_client, paramedic, task, settings
    ):
        kept = upload(paramedic_client, paramedic, task, image_bytes("PNG")).json()
        content = three_part_png()
        stale = create(paramedic_client, paramedic, task, content).json()
        put_part(stale["parts"][0]["url"], piece(content, stale["parts"][0]))
        live = create(paramedic_client, paramedic, task, image_bytes("JPEG")).json()
        # A crash between storing and inserting (§7), and between starting a multipart
        # upload and inserting its session (§13): storage holds what nobody owns.
        orphan = default_storage.save("xrays/2026/01/orphan.png", ContentFile(b"x" * 100))
        multipart_store().start("xrays/2026/01/never-recorded.dcm")
        XrayUploadSession.objects.filter(pk=stale["id"]).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )

        result = upload_sessions_sweep(now=timezone.now() + timedelta(hours=2))

        assert (result.expired, result.aborted_uploads, result.removed_objects) == (1, 1, 1)
        assert XrayUploadSession.objects.get(pk=stale["id"]).state == UploadState.EXPIRED
        assert XrayUploadSession.objects.get(pk=live["id"]).state == UploadState.UPLOADING
        record = XrayImage.objects.get(pk=kept["id"])
        assert sorted(stored_keys()) == [record.file.name]
        assert orphan not in stored_keys()
        pending = {u.upload_id for u in multipart_store().pending_uploads("")}
        assert pending == {XrayUploadSession.objects.get(pk=live["id"]).storage_upload_id}
        response = complete(paramedic_client, stale["id"])
        assert (response.status_code, response.json()["code"]) == (409, "upload_closed")

    def test_young_objects_are_left_alone(self, storage, paramedic_client, paramedic, task):
        default_storage.save("xrays/2026/01/just-stored.png", ContentFile(b"x" * 100))
        result = upload_sessions_sweep()
        assert result.removed_objects == 0
        assert stored_keys() == ["xrays/2026/01/just-stored.png"]

    def test_beat_runs_the_sweep(self, settings, db):
        entry = settings.CELERY_BEAT_SCHEDULE["sweep-xray-uploads"]
        assert entry["task"] == sweep_uploads.name == "xrays.sweep_uploads"
        assert sweep_uploads.delay().get() == {
            "expired": 0,
            "aborted_uploads": 0,
            "removed_objects": 0,
        }


@pytest.mark.s3
def test_validation_reads_a_few_ranges_not_the_whole_file(s3_storage):
    """A large DICOM is checked from its header and its end: two ranged reads."""
    key = "xrays/2026/01/large.dcm"
    big = large_dicom(12 * MIB)
    s3_storage.client().put_object(Bucket=s3_storage.bucket, Key=key, Body=big)
    with multipart_store().open_ranged(key, len(big)) as stream:
        info = inspect_image(stream, len(big))
        assert (info.format, info.width, info.height) == ("dicom", 2048, 3072)
        assert stream.requests <= 3


class TestPerParamedicCaps:
    """Every resource a caller can hold has a per-caller cap."""

    def test_open_sessions_are_capped_per_paramedic(
        self, storage, settings, paramedic_client, paramedic, task
    ):
        settings.XRAY_UPLOAD_MAX_OPEN_SESSIONS = 2
        sessions = [
            create(paramedic_client, paramedic, task, image_bytes("PNG"), notes=str(i))
            for i in range(2)
        ]
        assert [s.status_code for s in sessions] == [201, 201]
        uploads_before = set(multipart_store().pending_uploads("")) if storage is None else None

        refused = create(paramedic_client, paramedic, task, image_bytes("JPEG"))

        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_upload_sessions")
        assert XrayUploadSession.objects.count() == 2
        if storage is None:  # nothing was started in storage for the refused one
            assert set(multipart_store().pending_uploads("")) == uploads_before
        # A closed session frees its place; an expired one holds none.
        paramedic_client.delete(f"{API}/xray-uploads/{sessions[0].json()['id']}")
        XrayUploadSession.objects.filter(pk=sessions[1].json()["id"]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        again = [
            create(paramedic_client, paramedic, task, image_bytes("JPEG"), notes=str(i))
            for i in range(2)
        ]
        assert [r.status_code for r in again] == [201, 201]

    def test_the_cap_is_per_paramedic(self, settings, supervisor_client, paramedic, task):
        settings.XRAY_UPLOAD_MAX_OPEN_SESSIONS = 1
        assert create(supervisor_client, paramedic, task, image_bytes("PNG")).status_code == 201
        other = ParamedicFactory()
        other_task = put_on_task(other)
        assert create(supervisor_client, other, other_task, image_bytes("PNG")).status_code == 201
        refused = create(supervisor_client, paramedic, task, image_bytes("JPEG"))
        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_upload_sessions")

    def test_a_repeat_under_its_key_is_not_a_new_session(
        self, settings, paramedic_client, paramedic, task
    ):
        settings.XRAY_UPLOAD_MAX_OPEN_SESSIONS = 1
        first = create(paramedic_client, paramedic, task, image_bytes("PNG"), key="cap-1")
        again = create(paramedic_client, paramedic, task, image_bytes("PNG"), key="cap-1")
        assert (first.status_code, again.status_code) == (201, 200)

    def test_part_puts_are_throttled(self, throttle_rates, paramedic_client, paramedic, task):
        throttle_rates(upload_parts="3/min")
        content = three_part_png()
        session = create(paramedic_client, paramedic, task, content).json()
        part = session["parts"][0]
        statuses = [put_part(part["url"], piece(content, part))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_pass_the_cap(settings, paramedic):
    settings.XRAY_UPLOAD_MAX_OPEN_SESSIONS = 2
    task = put_on_task(paramedic)
    responses = in_parallel(
        6,
        lambda i: create(
            client_for(paramedic.user), paramedic, task, image_bytes("PNG"), notes=str(i)
        ),
    )
    assert sorted(r.status_code for r in responses) == [201, 201, 429, 429, 429, 429]
    assert XrayUploadSession.objects.count() == 2
    # The refused ones left no multipart upload behind.
    assert len(list(multipart_store().pending_uploads(""))) == 2


class TestNeverStuckCompleting:
    """However a complete ends, the session is left where the device can act:
    completed, failed with the reason, or uploading again after an outage."""

    @pytest.fixture
    def joined(self, paramedic_client, paramedic, task):
        """A session whose parts are all sent; the complete is the test's."""
        content = dicom_bytes("MR_small.dcm")
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        paramedic_client.raise_request_exception = False  # a 500 is an answer here
        return session["id"]

    @staticmethod
    def record_with(monkeypatch, **wrong):
        """Recording gets values the reader would never give (as the old one did):
        the database itself refuses them."""
        from xrays import sessions

        def inspect(stream, size):
            info = inspect_image(stream, size)
            for name, value in wrong.items():
                if name in info.dicom:
                    info.dicom[name] = value
                else:
                    setattr(info, name, value)
            return info

        monkeypatch.setattr(sessions, "inspect_image", inspect)

    @pytest.mark.parametrize(
        "wrong",
        [
            {"height": -5},  # a CHECK constraint: IntegrityError on every database
            pytest.param({"height": 99999999999}, marks=pytest.mark.postgres),  # DataError
            pytest.param({"dicom_modality": "X" * 17}, marks=pytest.mark.postgres),
            pytest.param({"dicom_body_part": "CH\x00EST"}, marks=pytest.mark.postgres),
        ],
        ids=["negative", "out_of_range", "too_long", "nul"],
    )
    def test_a_data_error_while_recording_fails_the_session_and_frees_it(
        self, paramedic_client, paramedic, task, joined, monkeypatch, wrong
    ):
        self.record_with(monkeypatch, **wrong)
        first = complete(paramedic_client, joined)
        assert (first.status_code, first.json()["code"]) == (500, "server_error")

        session = XrayUploadSession.objects.get(pk=joined)
        assert (session.state, session.failure_code) == (UploadState.FAILED, "server_error")
        state = paramedic_client.get(f"{API}/xray-uploads/{joined}").json()
        assert state["state"] == "failed"
        assert "could not be recorded" in state["failure"]["detail"]
        assert not XrayImage.objects.exists()
        assert stored_keys() == []  # the joined object is gone with it
        again = complete(paramedic_client, joined)
        assert (again.status_code, again.json()["code"]) == (500, "server_error")
        aborted = paramedic_client.delete(f"{API}/xray-uploads/{joined}")
        assert (aborted.status_code, aborted.json()["code"]) == (409, "upload_finished")

        # Nothing is held: the same file in a new session goes through.
        monkeypatch.undo()
        content = dicom_bytes("MR_small.dcm")
        fresh = create(paramedic_client, paramedic, task, content).json()
        send_parts(fresh, content)
        assert complete(paramedic_client, fresh["id"]).status_code == 201

    def test_an_error_nobody_foresaw_fails_the_session_too(
        self, paramedic_client, joined, monkeypatch
    ):
        from xrays import sessions

        def broken(**fields):
            raise RuntimeError("a bug")

        monkeypatch.setattr(sessions, "xray_record_insert", broken)
        response = complete(paramedic_client, joined)
        assert response.status_code == 500
        session = XrayUploadSession.objects.get(pk=joined)
        assert session.state == UploadState.FAILED
        assert session.failure_detail == (
            "The upload could not be recorded (RuntimeError); start a new upload."
        )
        assert stored_keys() == []

    @pytest.mark.parametrize("kind", ["dicom", "png"])  # a PNG is renamed before recording
    def test_a_database_outage_while_recording_gives_the_session_back(
        self, storage, paramedic_client, paramedic, task, monkeypatch, kind
    ):
        from django.db import OperationalError

        from xrays import sessions

        content = dicom_bytes("MR_small.dcm") if kind == "dicom" else image_bytes("PNG")
        session = create(paramedic_client, paramedic, task, content).json()
        send_parts(session, content)
        real_insert = sessions.xray_record_insert

        def outage(**fields):
            raise OperationalError("the database went away")

        monkeypatch.setattr(sessions, "xray_record_insert", outage)
        down = complete(paramedic_client, session["id"])
        assert (down.status_code, down.json()["code"]) == (503, "database_unavailable")
        held = XrayUploadSession.objects.get(pk=session["id"])
        assert held.state == UploadState.UPLOADING and held.assembled_at is not None
        assert stored_keys() == [held.storage_key]  # the joined object waits for the retry
        state = paramedic_client.get(f"{API}/xray-uploads/{session['id']}").json()
        assert (state["state"], state["parts"]) == ("uploading", [])

        monkeypatch.setattr(sessions, "xray_record_insert", real_insert)
        done = complete(paramedic_client, session["id"])
        assert done.status_code == 201, done.content
        assert stored_keys() == [XrayImage.objects.get().file.name]

    def test_abort_after_an_outage_removes_the_joined_object(
        self, paramedic_client, joined, monkeypatch
    ):
        from django.db import OperationalError

        from xrays import sessions

        def outage(**fields):
            raise OperationalError("the database went away")

        monkeypatch.setattr(sessions, "xray_record_insert", outage)
        assert complete(paramedic_client, joined).status_code == 503
        assert len(stored_keys()) == 1
        aborted = paramedic_client.delete(f"{API}/xray-uploads/{joined}")
        assert (aborted.status_code, aborted.json()["state"]) == (200, "aborted")
        assert stored_keys() == []

    def test_a_completion_whose_worker_died_can_be_aborted_once_its_lease_ran_out(
        self, paramedic_client, joined
    ):
        held = XrayUploadSession.objects.filter(pk=joined)
        held.update(state=UploadState.COMPLETING, lease_until=timezone.now() + timedelta(minutes=1))
        busy = paramedic_client.delete(f"{API}/xray-uploads/{joined}")
        assert (busy.status_code, busy.json()["code"]) == (409, "upload_completing")

        held.update(lease_until=timezone.now() - timedelta(seconds=1))  # the worker died
        aborted = paramedic_client.delete(f"{API}/xray-uploads/{joined}")
        assert (aborted.status_code, aborted.json()["state"]) == (200, "aborted")
        assert storage_holds_nothing()
