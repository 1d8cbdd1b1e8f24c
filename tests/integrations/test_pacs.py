"""Doctor review through a real PACS (design §15): Orthanc with DICOMweb, started by
the tests on loopback (tests/pacs.py), XRAY_SERVICE_KIND=dicomweb.

Uploads go through the API; the outbox delivers them by STOW-RS; what arrived is
checked with the PACS's own QIDO-RS and WADO-RS.
"""

import hashlib
import io
import json
import re
import time
from datetime import UTC, datetime

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image
from werkzeug import Response

from integrations import delivery, outbox
from integrations.clients import CLIENTS
from integrations.models import Destination, OutboxEvent, OutboxState
from tests.factories import put_on_task
from tests.helpers import client_for, upload
from tests.pacs import USER, OrthancServer
from tests.xrays.samples import dicom_bytes, dicom_with_elements, image_bytes
from xrays.models import XrayImage

pytestmark = pytest.mark.pacs

CHEST_CR = "RG1_UNCR.dcm"  # pydicom-data: a real computed-radiography chest X-ray


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request):
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    return None


@pytest.fixture
def task(paramedic):
    return put_on_task(paramedic, consultation_id="consult-42", patient_id="patient-7")


def xray_event() -> OutboxEvent:
    return OutboxEvent.objects.get(kind="xray.uploaded", destination="xray")


def make_due() -> None:
    OutboxEvent.objects.filter(state=OutboxState.PENDING).update(next_attempt_at=timezone.now())


def multipart_parts(response) -> list[bytes]:
    """The bodies of a multipart/related answer (WADO-RS)."""
    boundary = response.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    parts = []
    for chunk in response.content.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n"))
    return parts


def find_by_accession(pacs, accession: str) -> list[dict]:
    with pacs.client() as client:
        response = client.get(
            "/dicom-web/instances",
            params={"AccessionNumber": accession, "includefield": "all"},
            headers={"Accept": "application/dicom+json"},
        )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else []


def tag(found: dict, keyword_tag: str):
    return found.get(keyword_tag, {}).get("Value", [None])[0]


def retrieve(pacs, url: str) -> pydicom.Dataset:
    with pacs.client() as client:
        # transfer-syntax=*: as stored (Orthanc 1.10 cannot transcode JPEG 2000).
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        response = client.get(url, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    (part,) = multipart_parts(response)
    return pydicom.dcmread(io.BytesIO(part))


class TestDicom:
    def test_a_cr_xray_arrives_with_the_consultation_and_patient_and_same_pixels(
        self, storage, pacs, paramedic, task, doctor, django_capture_on_commit_callbacks
    ):
        content = dicom_bytes(CHEST_CR)
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for(paramedic.user), paramedic, task, content, name="c.dcm")
        assert response.status_code == 201, response.content
        xray = XrayImage.objects.get(pk=response.json()["id"])
        assert xray_event().state == OutboxState.DELIVERED, xray_event().last_error

        # QIDO-RS finds it by the consultation, under the task's patient.
        (found,) = find_by_accession(pacs, "consult-42")
        assert tag(found, "00100020") == "patient-7"  # PatientID, coerced
        assert tag(found, "00080050") == "consult-42"  # AccessionNumber, coerced
        original = pydicom.dcmread(io.BytesIO(content))
        assert tag(found, "00080018") == original.SOPInstanceUID
        assert tag(found, "00080060") == "CR"

        # The record keeps what the PACS stored; WADO-RS returns it, same pixels.
        xray.refresh_from_db()
        assert xray.pacs_sop_uid == original.SOPInstanceUID
        assert xray.pacs_study_uid == original.StudyInstanceUID
        assert xray.pacs_series_uid == original.SeriesInstanceUID
        assert xray.pacs_retrieve_url.startswith(pacs.dicomweb + "/studies/")
        sent = retrieve(pacs, xray.pacs_retrieve_url)
        assert sent.PatientID == "patient-7" and sent.AccessionNumber == "consult-42"
        assert sent.IssuerOfPatientID == "PATIENT-SERVICE"
        assert sent.PatientName == original.PatientName  # only the listed tags change
        assert np.array_equal(sent.pixel_array, original.pixel_array)

        # The stored original is byte-identical to the upload.
        with default_storage.open(xray.file.name, "rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == hashlib.sha256(content).hexdigest()

        # Doctors see where to review it; the PACS renders a preview there.
        detail = client_for(doctor).get(f"/api/v1/xrays/{xray.pk}").json()
        assert detail["pacs"]["sop_instance_uid"] == original.SOPInstanceUID
        assert detail["pacs"]["retrieve_url"] == xray.pacs_retrieve_url
        assert detail["pacs"]["rendered_url"] == xray.pacs_retrieve_url + "/rendered"
        with pacs.client() as client:
            rendered = client.get(detail["pacs"]["rendered_url"], headers={"Accept": "image/jpeg"})
        assert rendered.status_code == 200
        assert Image.open(io.BytesIO(rendered.content)).size == (original.Columns, original.Rows)

    @pytest.mark.parametrize(
        "sample",
        [
            "MR_small_implicit.dcm",
            "MR_small_bigendian.dcm",
            "JPEG2000.dcm",  # encapsulated frames, copied as they are
            "RG3_UNCR.dcm",  # an extremity CR
        ],
    )
    def test_every_transfer_syntax_arrives_coerced_with_its_pixel_data_intact(
        self, sample, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        content = dicom_bytes(sample)
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for(paramedic.user), paramedic, task, content)
        assert response.status_code == 201, response.content
        assert xray_event().state == OutboxState.DELIVERED, xray_event().last_error
        original = pydicom.dcmread(io.BytesIO(content))
        sent = retrieve(pacs, XrayImage.objects.get().pacs_retrieve_url)
        assert (sent.PatientID, sent.AccessionNumber) == ("patient-7", "consult-42")
        assert sent.SOPInstanceUID == original.SOPInstanceUID
        assert sent.StudyInstanceUID == original.StudyInstanceUID
        assert sent.Modality == original.Modality
        if original.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID:
            assert sent.PixelData == original.PixelData
        else:  # Orthanc answers big endian as little endian: same pixels
            assert np.array_equal(sent.pixel_array, original.pixel_array)

    def test_paramedics_do_not_get_the_pacs_block(
        self, pacs, paramedic, task, supervisor, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            xray_id = upload(client_for(paramedic.user), paramedic, task, dicom_bytes()).json()[
                "id"
            ]
        own = client_for(paramedic.user).get(f"/api/v1/xrays/{xray_id}").json()
        assert own["pacs"] is None
        seen = client_for(supervisor).get(f"/api/v1/xrays/{xray_id}").json()
        assert seen["pacs"]["study_instance_uid"]

    def test_the_admin_page_links_to_the_pacs(
        self, pacs, paramedic, task, console_client, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            xray_id = upload(client_for(paramedic.user), paramedic, task, dicom_bytes()).json()[
                "id"
            ]
        page = console_client.get(f"/admin/xrays/xrayimage/{xray_id}/change/")
        assert b"Not stored in a PACS (yet)" in page.content
        for callback in callbacks:
            callback()
        xray = XrayImage.objects.get(pk=xray_id)
        page = console_client.get(f"/admin/xrays/xrayimage/{xray_id}/change/").content.decode()
        assert f'<a href="{xray.pacs_retrieve_url}/rendered" rel="noreferrer">' in page
        assert f'<a href="{xray.pacs_retrieve_url}" rel="noreferrer">' in page
        listing = console_client.get("/admin/xrays/xrayimage/").content.decode()
        assert 'alt="True"' in listing

    def test_a_redelivery_stores_the_same_instance_once(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes(CHEST_CR))
        event = xray_event()
        outbox.outbox_retry(event_ids=[event.pk])  # at-least-once: the same row again
        delivery.deliver(event.pk)
        event.refresh_from_db()
        assert event.state == OutboxState.DELIVERED
        assert len(find_by_accession(pacs, "consult-42")) == 1


class TestTheSameFileTwice:
    """The same DICOM uploaded to two tasks: two records, two instances in the PACS.

    The first record's copy keeps the file's UIDs; the second's are minted (the record
    keeps both: `dicom` the file's, `pacs` the copy's). For another patient the study
    and series are minted too, as a study belongs to one patient.
    """

    @pytest.mark.parametrize("second_patient", ["patient-8", "patient-7"])
    def test_both_are_stored_and_retrievable(
        self, pacs, paramedic, other_paramedic, second_patient, django_capture_on_commit_callbacks
    ):
        content = dicom_bytes("CT_small.dcm")
        original = pydicom.dcmread(io.BytesIO(content))
        tasks = [
            put_on_task(paramedic, consultation_id="consult-42", patient_id="patient-7"),
            put_on_task(other_paramedic, consultation_id="consult-43", patient_id=second_patient),
        ]
        for medic, task in zip((paramedic, other_paramedic), tasks, strict=True):
            with django_capture_on_commit_callbacks(execute=True):
                response = upload(client_for(medic.user), medic, task, content)
            assert response.status_code == 201, response.content
        events = OutboxEvent.objects.filter(destination="xray")
        assert {(e.state, e.last_error) for e in events} == {(OutboxState.DELIVERED, "")}

        first, second = (XrayImage.objects.get(task=task) for task in tasks)
        assert (first.pacs_study_uid, first.pacs_series_uid, first.pacs_sop_uid) == (
            original.StudyInstanceUID,
            original.SeriesInstanceUID,
            original.SOPInstanceUID,
        )
        assert second.pacs_sop_uid.startswith("2.25.")
        assert second.pacs_sop_uid != first.pacs_sop_uid
        if second_patient == "patient-7":  # the same patient's study: one study, two images
            assert second.pacs_study_uid == original.StudyInstanceUID
            assert second.pacs_series_uid == original.SeriesInstanceUID
        else:
            assert second.pacs_study_uid.startswith("2.25.")
            assert second.pacs_series_uid.startswith("2.25.")
        for xray in (first, second):
            # The record keeps the file's UIDs next to the copy's: the mapping.
            assert (xray.dicom_study_uid, xray.dicom_sop_uid) == (
                original.StudyInstanceUID,
                original.SOPInstanceUID,
            )
            sent = retrieve(pacs, xray.pacs_retrieve_url)  # WADO-RS: 200 for both
            assert sent.SOPInstanceUID == xray.pacs_sop_uid
            assert sent.file_meta.MediaStorageSOPInstanceUID == xray.pacs_sop_uid
            assert sent.StudyInstanceUID == xray.pacs_study_uid
            assert (sent.PatientID, sent.AccessionNumber) == (
                xray.task.patient_id,
                xray.consultation_id,
            )
            assert sent.PixelData == original.PixelData
            with default_storage.open(xray.file.name, "rb") as stored:
                assert stored.read() == content  # the original, byte for byte

    def test_a_file_without_uids_is_stored_under_minted_ones(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        bare = {"StudyInstanceUID": None, "SeriesInstanceUID": None, "SOPInstanceUID": None}
        content = dicom_with_elements(bare, "CT_small.dcm")
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for(paramedic.user), paramedic, task, content)
        assert response.status_code == 201, response.content
        assert xray_event().state == OutboxState.DELIVERED, xray_event().last_error
        xray = XrayImage.objects.get()
        assert xray.dicom_sop_uid == "" and xray.pacs_sop_uid.startswith("2.25.")
        sent = retrieve(pacs, xray.pacs_retrieve_url)
        assert (sent.StudyInstanceUID, sent.SOPInstanceUID) == (
            xray.pacs_study_uid,
            xray.pacs_sop_uid,
        )

    def test_a_stored_object_that_is_not_the_recorded_one_is_dead_not_relabelled(
        self, pacs, paramedic, other_paramedic, django_capture_on_commit_callbacks
    ):
        content = dicom_bytes("CT_small.dcm")
        first_task = put_on_task(paramedic, patient_id="patient-7")
        second_task = put_on_task(other_paramedic, patient_id="patient-8")
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, first_task, content)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            upload(client_for(other_paramedic.user), other_paramedic, second_task, content)
        second = XrayImage.objects.get(task=second_task)
        with default_storage.open(second.file.name, "wb") as handle:
            handle.write(dicom_bytes("MR_small.dcm"))  # another instance than recorded
        for callback in callbacks:
            callback()
        event = OutboxEvent.objects.get(destination="xray", aggregate_id=second.pk)
        assert event.state == OutboxState.DEAD
        assert event.last_error == (
            "pacs: the stored DICOM's StudyInstanceUID is not the one recorded at upload"
        )


class TestSecondaryCapture:
    def test_a_png_arrives_as_secondary_capture_with_identifiers_and_a_preview(
        self, pacs, paramedic, task, doctor, django_capture_on_commit_callbacks
    ):
        gradient = Image.linear_gradient("L").resize((300, 200))
        buffer = io.BytesIO()
        gradient.save(buffer, "PNG")
        captured = datetime(2026, 11, 30, 22, 15, 7, tzinfo=UTC)
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(
                client_for(paramedic.user),
                paramedic,
                task,
                buffer.getvalue(),
                captured_at=captured.isoformat(),
                body_part="left wrist",
            )
        assert response.status_code == 201, response.content
        assert xray_event().state == OutboxState.DELIVERED, xray_event().last_error

        (found,) = find_by_accession(pacs, "consult-42")
        assert tag(found, "00080016") == pydicom.uid.SecondaryCaptureImageStorage
        assert tag(found, "00100020") == "patient-7"
        xray = XrayImage.objects.get(pk=response.json()["id"])
        sent = retrieve(pacs, xray.pacs_retrieve_url)
        assert sent.SOPInstanceUID == xray.pacs_sop_uid
        assert str(sent.OperatorsName) == "Lovelace^Ada"
        assert (sent.ContentDate, sent.ContentTime[:6]) == ("20261130", "221507")
        assert sent.AcquisitionDateTime.startswith("20261130221507")
        assert sent.SeriesDescription == "left wrist"
        assert sent.Modality == "OT" and sent.ConversionType == "WSD"
        assert np.array_equal(sent.pixel_array, np.asarray(gradient))

        detail = client_for(doctor).get(f"/api/v1/xrays/{xray.pk}").json()
        with pacs.client() as client:
            rendered = client.get(detail["pacs"]["rendered_url"], headers={"Accept": "image/jpeg"})
        assert rendered.status_code == 200
        assert rendered.headers["content-type"].startswith("image/jpeg")
        assert Image.open(io.BytesIO(rendered.content)).size == (300, 200)

    def test_names_are_sent_in_utf8_as_one_person_name(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        paramedic.first_name, paramedic.last_name = "Zoë", "Øster^gaard=Smith"
        paramedic.save(update_fields=["first_name", "last_name"])
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, image_bytes("PNG"))
        sent = retrieve(pacs, XrayImage.objects.get().pacs_retrieve_url)
        assert sent.SpecificCharacterSet == "ISO_IR 192"
        assert (sent.OperatorsName.family_name, sent.OperatorsName.given_name) == (
            "Øster gaard Smith",
            "Zoë",
        )

    def test_a_jpeg_of_the_same_consultation_joins_the_same_study(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        images = []
        for color in ((250, 10, 10), (10, 250, 10)):
            buffer = io.BytesIO()
            Image.new("RGB", (64, 48), color).save(buffer, "JPEG", quality=95)
            images.append(buffer.getvalue())
        with django_capture_on_commit_callbacks(execute=True):
            for content in images:
                upload(client_for(paramedic.user), paramedic, task, content)
        states = OutboxEvent.objects.filter(destination="xray").values_list("state", flat=True)
        assert set(states) == {OutboxState.DELIVERED}
        studies = {x.pacs_study_uid for x in XrayImage.objects.all()}
        instances = {x.pacs_sop_uid for x in XrayImage.objects.all()}
        assert len(studies) == 1 and len(instances) == 2
        found = find_by_accession(pacs, "consult-42")
        assert {tag(f, "00080018") for f in found} == instances
        for xray in XrayImage.objects.all():
            sent = retrieve(pacs, xray.pacs_retrieve_url)
            assert sent.PhotometricInterpretation == "RGB"
            with default_storage.open(xray.file.name, "rb") as stored:
                assert np.array_equal(sent.pixel_array, np.asarray(Image.open(stored)))


class TestFailures:
    def test_pacs_stopped_is_retried_and_delivered_after_it_returns(
        self, settings, tmp_path, paramedic, task, django_capture_on_commit_callbacks
    ):
        own = OrthancServer(tmp_path / "pacs").start()
        try:
            settings.XRAY_SERVICE_KIND = "dicomweb"
            settings.XRAY_SERVICE_URL = own.dicomweb
            settings.XRAY_SERVICE_USER, settings.XRAY_SERVICE_PASSWORD = USER, "pacs-test-password"
            own.stop()
            with django_capture_on_commit_callbacks(execute=True):
                upload(client_for(paramedic.user), paramedic, task, dicom_bytes(CHEST_CR))
            event = xray_event()
            assert event.state == OutboxState.PENDING
            assert event.attempts == 1
            assert "ConnectError" in event.last_error

            own.start()
            make_due()
            delivery.relay()
            event.refresh_from_db()
            assert event.state == OutboxState.DELIVERED, event.last_error
            assert len(find_by_accession(own, "consult-42")) == 1
            assert XrayImage.objects.get().pacs_sop_uid
        finally:
            own.stop()

    @pytest.mark.parametrize("status", [500, 503, 429])
    def test_a_server_error_is_retried_and_a_token_is_sent_without_a_user(
        self, status, httpserver, settings, paramedic, task, django_capture_on_commit_callbacks
    ):
        # A stand-in PACS that is having a bad day (Orthanc cannot be made to answer 5xx).
        httpserver.expect_request(
            re.compile("/dicom-web/studies/.+"), method="POST"
        ).respond_with_data("busy", status=status)
        settings.XRAY_SERVICE_KIND = "dicomweb"
        settings.XRAY_SERVICE_URL = httpserver.url_for("/dicom-web")
        settings.XRAY_SERVICE_USER = ""
        settings.INTEGRATION_TOKEN = "pacs-bearer-token"
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        event = xray_event()
        assert (event.state, event.attempts) == (OutboxState.PENDING, 1)
        assert event.last_error == f"pacs: HTTP {status}"
        (request, _), *_ = httpserver.log
        assert request.headers["Authorization"] == "Bearer pacs-bearer-token"
        assert request.headers["Content-Type"].startswith(
            'multipart/related; type="application/dicom"'
        )
        assert int(request.headers["Content-Length"]) == len(request.get_data())

    def test_a_conflicting_study_is_dead_with_the_reason_and_retried_by_a_supervisor(
        self, pacs, paramedic, task, console_client, django_capture_on_commit_callbacks
    ):
        content = dicom_bytes(CHEST_CR)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = upload(client_for(paramedic.user), paramedic, task, content)
        xray = XrayImage.objects.get(pk=response.json()["id"])
        # The object now holds another study's instance than the record says.
        with default_storage.open(xray.file.name, "wb") as handle:
            handle.write(dicom_bytes("CT_small.dcm"))
        for callback in callbacks:
            callback()
        event = xray_event()
        assert event.state == OutboxState.DEAD
        assert event.last_error.startswith("pacs: HTTP 409 (conflict), instance ")
        assert event.last_error.endswith("refused: failure reason 272 (0x0110, processing failure)")
        assert find_by_accession(pacs, "consult-42") == []
        assert XrayImage.objects.get().pacs_sop_uid == ""

        # Put right, a supervisor's retry from the admin delivers it.
        default_storage.delete(xray.file.name)
        default_storage.save(xray.file.name, io.BytesIO(content))
        with django_capture_on_commit_callbacks(execute=True):
            answer = console_client.post(
                "/admin/integrations/outboxevent/",
                {"action": "retry_selected", "_selected_action": [str(event.pk)]},
            )
        assert answer.status_code == 302
        event.refresh_from_db()
        assert event.state == OutboxState.DELIVERED, event.last_error
        assert len(find_by_accession(pacs, "consult-42")) == 1

    def test_a_missing_object_is_dead_with_a_reason(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        default_storage.delete(XrayImage.objects.get().file.name)
        for callback in callbacks:
            callback()
        event = xray_event()
        assert event.state == OutboxState.DEAD
        assert event.last_error == "pacs: the stored object is missing"

    def test_an_identifier_dicom_cannot_hold_is_dead_not_altered(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            upload(
                client_for(paramedic.user),
                paramedic,
                task,
                dicom_bytes(),
                consultation_id="c-1\\c-2",
            )
        event = xray_event()
        assert event.state == OutboxState.DEAD
        assert "AccessionNumber" in event.last_error and "backslash" in event.last_error
        assert find_by_accession(pacs, "c-1") == []

    def test_a_header_without_a_transfer_syntax_is_dead_with_the_reason(
        self, pacs, paramedic, task, django_capture_on_commit_callbacks
    ):
        # Accepted at upload (pydicom guesses the encoding), but no copy can say which it is.
        content = dicom_bytes()
        at = content.index(b"\x02\x00\x10\x00UI")  # (0002,0010) TransferSyntaxUID
        length = 8 + int.from_bytes(content[at + 6 : at + 8], "little")
        content = content[:at] + content[at + length :]
        group = int.from_bytes(content[140:144], "little") - length  # (0002,0000) UL
        content = content[:140] + group.to_bytes(4, "little") + content[144:]
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for(paramedic.user), paramedic, task, content)
        assert response.status_code == 201, response.content
        event = xray_event()
        assert event.state == OutboxState.DEAD
        assert event.last_error == (
            "pacs: the DICOM header cannot be encoded again (AttributeError)"
        )

    def test_wrong_credentials_are_dead(
        self, pacs, settings, paramedic, task, django_capture_on_commit_callbacks
    ):
        settings.XRAY_SERVICE_PASSWORD = "wrong"
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        event = xray_event()
        assert (event.state, event.last_error) == (OutboxState.DEAD, "pacs: HTTP 401")


def stow_answer(sop_uid: str, *, failed_reason=None, retrieve="http://pacs.example/x") -> dict:
    """A STOW-RS answer (DICOM JSON) naming `sop_uid` as stored, or as failed."""
    item = {"00081155": {"vr": "UI", "Value": [sop_uid]}}
    if failed_reason is not None:
        item["00081197"] = {"vr": "US", "Value": [failed_reason]}
        return {"00081198": {"vr": "SQ", "Value": [item]}, "00081199": {"vr": "SQ"}}
    item["00081190"] = {"vr": "UR", "Value": [retrieve]}
    return {"00081198": {"vr": "SQ"}, "00081199": {"vr": "SQ", "Value": [item]}}


CT_SOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"  # CT_small.dcm's instance


class TestAnswersOfOtherPacs:
    """What other PACS may answer, from a stand-in HTTP server (Orthanc never does)."""

    @pytest.fixture
    def stand_in_pacs(self, httpserver, settings):
        settings.XRAY_SERVICE_KIND = "dicomweb"
        settings.XRAY_SERVICE_URL = httpserver.url_for("/dicom-web")
        settings.XRAY_SERVICE_USER, settings.XRAY_SERVICE_PASSWORD = "u", "p"
        return httpserver

    @pytest.mark.parametrize(
        ("status", "answer", "state", "error"),
        [
            (202, stow_answer(CT_SOP, failed_reason=0xA700), "pending", "0xA700, out of resources"),
            (202, stow_answer(CT_SOP, failed_reason=0xA7FF), "pending", "out of resources"),
            (409, stow_answer(CT_SOP, failed_reason=0xC000), "dead", "0xC000, cannot understand"),
            (409, None, "dead", "pacs: HTTP 409 (conflict)"),
            (400, b"<html>bad</html>", "dead", "pacs: HTTP 400"),
            (200, stow_answer("1.2.3.4"), "pending", "without the instance in its answer"),
            (200, b"not json", "pending", "without the instance in its answer"),
            (200, b"[" * 100_000, "pending", "without the instance in its answer"),
            (504, None, "pending", "pacs: HTTP 504"),
        ],
    )
    def test_each_answer_is_delivered_retried_or_dead(
        self, stand_in_pacs, status, answer, state, error, paramedic, task,
        django_capture_on_commit_callbacks,
    ):  # fmt: skip
        body = answer if isinstance(answer, bytes | type(None)) else json.dumps(answer).encode()
        stand_in_pacs.expect_request(re.compile("/dicom-web/studies/.+")).respond_with_data(
            body or b"", status=status, content_type="application/dicom+json"
        )
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        event = xray_event()
        assert event.state == state
        assert error in event.last_error
        assert XrayImage.objects.get().pacs_sop_uid == ""

    @pytest.mark.parametrize(
        "retrieve",
        ["javascript:alert(1)", "ftp://pacs.example/x", 42, "", "http://p.example/" + "x" * 990],
    )
    def test_a_retrieve_url_that_is_not_http_is_replaced_by_the_standard_one(
        self, stand_in_pacs, retrieve, paramedic, task, django_capture_on_commit_callbacks
    ):
        stand_in_pacs.expect_request(re.compile("/dicom-web/studies/.+")).respond_with_json(
            stow_answer(CT_SOP, retrieve=retrieve)
        )
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        xray = XrayImage.objects.get()
        assert xray_event().state == OutboxState.DELIVERED
        assert xray.pacs_retrieve_url == (
            f"{stand_in_pacs.url_for('/dicom-web')}/studies/{xray.dicom_study_uid}"
            f"/series/{xray.dicom_series_uid}/instances/{CT_SOP}"
        )

    def test_a_pacs_that_does_not_answer_in_time_is_retried(
        self, stand_in_pacs, settings, paramedic, task, django_capture_on_commit_callbacks
    ):
        settings.XRAY_SERVICE_TIMEOUT_SECONDS = 0.5
        stand_in_pacs.expect_request(re.compile("/dicom-web/studies/.+")).respond_with_handler(
            lambda request: time.sleep(2) or Response("late", status=200)
        )
        with django_capture_on_commit_callbacks(execute=True):
            upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        event = xray_event()
        assert (event.state, event.last_error) == (OutboxState.PENDING, "pacs: ReadTimeout")


@pytest.mark.parametrize(
    ("kind", "client"), [("json", "XrayServiceClient"), ("dicomweb", "DicomWebClient")]
)
def test_the_xray_service_kind_picks_the_transport(settings, kind, client):
    settings.XRAY_SERVICE_KIND = kind
    assert type(CLIENTS[Destination.XRAY]()).__name__ == client


def test_a_row_recorded_before_the_pacs_transport_is_described_at_delivery(
    pacs, paramedic, task, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload(client_for(paramedic.user), paramedic, task, dicom_bytes(CHEST_CR))
    event = xray_event()
    payload = dict(event.payload)
    del payload["pacs_copy"]
    OutboxEvent.objects.filter(pk=event.pk).update(payload=payload)
    for callback in callbacks:
        callback()
    event.refresh_from_db()
    assert event.state == OutboxState.DELIVERED, event.last_error
    (found,) = find_by_accession(pacs, "consult-42")
    assert tag(found, "00100020") == "patient-7"
