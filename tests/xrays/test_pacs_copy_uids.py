"""Which UIDs a DICOM's PACS copy carries (xrays.events.minted_copy_uids).

The copy keeps the file's UIDs unless another record holds them; then (or where the
file has none) it carries minted ones, listed in the event with the file's, and the
record keeps both once the PACS stored it. Delivery to a real PACS:
tests/integrations/test_pacs.py (TestTheSameFileTwice).
"""

import pydicom
import pytest

from integrations.models import OutboxEvent
from tests.factories import ParamedicFactory, put_on_task
from tests.helpers import client_for, in_parallel, upload
from tests.xrays.samples import dicom_bytes, dicom_with_elements, image_bytes
from xrays.events import pacs_copy_description
from xrays.models import XrayImage

CT = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm", download=False))


def paramedic_on(patient: str, consultation: str = "consult-1"):
    medic = ParamedicFactory()
    return medic, put_on_task(medic, patient_id=patient, consultation_id=consultation)


def send(content: bytes, patient: str, consultation: str = "consult-1") -> dict:
    """Upload `content` for a task of `patient`; the PACS copy its event describes."""
    medic, task = paramedic_on(patient, consultation)
    response = upload(client_for(medic.user), medic, task, content)
    assert response.status_code == 201, response.content
    return copy_of(response.json()["id"])


def copy_of(xray_id) -> dict:
    event = OutboxEvent.objects.get(aggregate_id=xray_id, destination="xray")
    return event.payload["pacs_copy"]


def test_the_first_record_keeps_the_files_uids(db):
    copy = send(dicom_bytes("CT_small.dcm"), "patient-7")
    assert copy["minted_uids"] == {}
    assert copy["study_instance_uid"] == CT.StudyInstanceUID


def test_the_same_file_for_another_patient_is_a_study_of_its_own(db):
    first = send(dicom_bytes("CT_small.dcm"), "patient-7")
    second = send(dicom_bytes("CT_small.dcm"), "patient-8")
    minted = second["minted_uids"]
    assert set(minted) == {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}
    assert minted["StudyInstanceUID"]["original"] == CT.StudyInstanceUID
    assert minted["SOPInstanceUID"]["original"] == CT.SOPInstanceUID
    assert all(uid["copy"].startswith("2.25.") for uid in minted.values())
    assert second["study_instance_uid"] == minted["StudyInstanceUID"]["copy"]
    assert first["minted_uids"] == {}  # described when it was recorded, never again

    # That patient's next image of the study joins the study minted for it.
    other_instance = dicom_with_elements(
        {"SOPInstanceUID": ("UI", "1.2.826.0.1.3")}, "CT_small.dcm"
    )
    third = send(other_instance, "patient-8")
    assert third["study_instance_uid"] == second["study_instance_uid"]
    assert third["minted_uids"]["SeriesInstanceUID"] == minted["SeriesInstanceUID"]


def test_the_same_file_for_the_same_patient_is_a_second_instance_of_its_study(db):
    send(dicom_bytes("CT_small.dcm"), "patient-7")
    second = send(dicom_bytes("CT_small.dcm"), "patient-7", consultation="consult-2")
    assert set(second["minted_uids"]) == {"SOPInstanceUID"}
    assert second["study_instance_uid"] == CT.StudyInstanceUID


def test_a_file_without_uids_gets_them_minted(db):
    bare = {"StudyInstanceUID": None, "SeriesInstanceUID": None, "SOPInstanceUID": None}
    copy = send(dicom_with_elements(bare, "CT_small.dcm"), "patient-7", "consult-9")
    minted = copy["minted_uids"]
    assert {uid["original"] for uid in minted.values()} == {""}
    # The consultation's study, as a PNG/JPEG of it gets (a Secondary Capture).
    png_copy = send(image_bytes("PNG"), "patient-7", "consult-9")
    assert copy["study_instance_uid"] == png_copy["study_instance_uid"]


def test_minted_uids_are_derived_so_a_redelivery_sends_the_same_instance(db):
    send(dicom_bytes("CT_small.dcm"), "patient-7")
    second = send(dicom_bytes("CT_small.dcm"), "patient-8")
    xray = XrayImage.objects.get(file=second["key"])
    assert pacs_copy_description(xray)["minted_uids"] == second["minted_uids"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_file_do_not_both_keep_its_uids():
    content = dicom_bytes("CT_small.dcm")
    devices = [paramedic_on(f"patient-{i}") for i in range(4)]

    def send_one(i):
        medic, task = devices[i]
        return upload(client_for(medic.user), medic, task, content)

    # The suite's contract check builds the schema on a process's first response, and
    # drf-spectacular's loading is not thread-safe: build it before the race.
    medic = devices[0][0]
    assert client_for(medic.user).get(f"/api/v1/paramedics/{medic.id}").status_code == 200
    responses = in_parallel(4, send_one)

    assert [r.status_code for r in responses] == [201] * 4
    copies = [copy_of(r.json()["id"]) for r in responses]
    keeping = [c for c in copies if not c["minted_uids"]]
    assert len(keeping) == 1, [c["minted_uids"] for c in copies]
    studies = [c["study_instance_uid"] for c in copies]
    assert len(set(studies)) == 4  # one study per patient
