"""Hostile DICOM headers, through both ways in (the multipart upload and upload sessions).

Every header value the service keeps is read by one typed reader
(`xrays.validation.read_kept_tags`): a value of the wrong VR, with several values,
out of range, too long for its VR and column, or not a UID where a UID belongs is
400 `corrupt_image` naming the tag; a bad value of a tag that is only shown
(Modality, BodyPartExamined) is dropped. Either way nothing is half-written, and
an upload session ends `completed` or `failed`, never stuck `completing`.

Each class of problem once per tag it can reach; tests/fuzz/test_dicom_header_fuzz.py
writes random VRs and values into the same tags.
"""

import pytest

from tests.factories import put_on_task
from tests.helpers import API, assert_json_error, client_for, stored_keys, upload, upload_in_session
from tests.xrays.samples import dicom_with_elements
from xrays.models import UploadState, XrayImage, XrayUploadSession

ROWS, STUDY = "Rows (0028,0010)", "StudyInstanceUID (0020,000D)"
SERIES, SOP = "SeriesInstanceUID (0020,000E)", "SOPInstanceUID (0008,0018)"

# name -> (elements written, the tag the refusal names)
REFUSED = {
    "Rows with two values": ({"Rows": ("US", [64, 64])}, ROWS),
    "Rows as DS NaN": ({"Rows": ("DS", "NaN")}, ROWS),
    "Rows as DS 1e400": ({"Rows": ("DS", "1e400")}, ROWS),
    "Rows as IS -5": ({"Rows": ("IS", "-5")}, ROWS),
    "Rows as IS 99999999999": ({"Rows": ("IS", "99999999999")}, ROWS),
    "Rows as LO abc": ({"Rows": ("LO", "abc")}, ROWS),
    "Rows as FD": ({"Rows": ("FD", 64.0)}, ROWS),
    "Columns 0": ({"Columns": ("US", 0)}, "Columns (0028,0011)"),
    "Rows as a sequence": ({"Rows": ("SQ", [])}, ROWS),
    "StudyInstanceUID ..": ({"StudyInstanceUID": ("UI", "..")}, STUDY),
    "StudyInstanceUID leading zero": ({"StudyInstanceUID": ("UI", "1.02.3")}, STUDY),
    "StudyInstanceUID empty component": ({"StudyInstanceUID": ("UI", "1..3")}, STUDY),
    "StudyInstanceUID with a NUL inside": ({"StudyInstanceUID": ("UI", "1.2\x00.3")}, STUDY),
    "StudyInstanceUID as US": ({"StudyInstanceUID": ("US", 5)}, STUDY),
    "StudyInstanceUID path": ({"StudyInstanceUID": ("LO", "../../studies")}, STUDY),
    "SeriesInstanceUID of 65 characters": ({"SeriesInstanceUID": ("UI", "1." + "2" * 63)}, SERIES),
    "SOPInstanceUID with letters": ({"SOPInstanceUID": ("UI", "1.2.3a")}, SOP),
    "SOPInstanceUID with two values": ({"SOPInstanceUID": ("UI", ["1.2.3", "1.2.4"])}, SOP),
    "SOPInstanceUID of 2 KB": ({"SOPInstanceUID": ("UT", "1" * 2048)}, SOP),
}
# name -> (elements written, the `dicom` field that comes back empty)
DROPPED = {
    "Modality of 17 characters": ({"Modality": ("CS", "X" * 17)}, "modality"),
    "Modality with two values": ({"Modality": ("CS", ["CR", "DX"])}, "modality"),
    "Modality as SS": ({"Modality": ("SS", -3)}, "modality"),
    "BodyPartExamined with a NUL": (
        {"BodyPartExamined": ("CS", "CH\x00EST")},
        "body_part_examined",
    ),
    "BodyPartExamined not ASCII": (
        {"BodyPartExamined": ("LO", "Brustkörper")},
        "body_part_examined",
    ),
    "BodyPartExamined with a backslash": (
        {"BodyPartExamined": ("LT", "CHEST\\HAND")},
        "body_part_examined",
    ),
}
PATHS = ["multipart", "session"]


@pytest.fixture
def task(paramedic):
    return put_on_task(paramedic)


def send(path, paramedic, task, content):
    """The upload as a device sends it; (response, session or None)."""
    client = client_for(paramedic.user)
    if path == "multipart":
        return upload(client, paramedic, task, content), None
    session_id, response = upload_in_session(client, paramedic, task, content)
    return response, XrayUploadSession.objects.get(pk=session_id)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_value_is_400_naming_the_tag_and_leaves_nothing(path, case, paramedic, task):
    elements, tag = REFUSED[case]
    response, session = send(path, paramedic, task, dicom_with_elements(elements))

    body = assert_json_error(response, 400, "corrupt_image")
    assert tag in body["detail"], body
    assert not XrayImage.objects.exists()
    assert stored_keys() == []
    if session is not None:
        session.refresh_from_db()
        assert (session.state, session.failure_code) == (UploadState.FAILED, "corrupt_image")
        assert tag in session.failure_detail
        client = client_for(paramedic.user)
        again = client.post(f"{API}/xray-uploads/{session.pk}/complete")
        assert assert_json_error(again, 400, "corrupt_image")["detail"] == body["detail"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(DROPPED))
def test_a_bad_informative_value_is_dropped(path, case, paramedic, task):
    elements, dropped = DROPPED[case]
    response, session = send(path, paramedic, task, dicom_with_elements(elements))

    assert response.status_code == 201, response.content
    tags = response.json()["dicom"]
    assert tags[dropped] == ""
    assert tags["study_instance_uid"] == "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
    assert (response.json()["width"], response.json()["height"]) == (64, 64)
    if session is not None:
        session.refresh_from_db()
        assert session.state == UploadState.COMPLETED


@pytest.mark.parametrize("path", PATHS)
def test_values_at_their_bounds_are_kept(path, paramedic, task):
    longest_uid = "1." + "2" * 62
    elements = {
        "StudyInstanceUID": ("UI", "0.0"),
        "SeriesInstanceUID": ("UI", longest_uid),
        "SOPInstanceUID": ("UI", "2.25.10"),
        "Modality": ("CS", "X" * 16),
        "BodyPartExamined": ("CS", "CHEST"),
        "Rows": ("US", 65535),
        "Columns": ("US", 1),
    }
    response, _ = send(path, paramedic, task, dicom_with_elements(elements))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["dicom"] == {
        "modality": "X" * 16,
        "study_instance_uid": "0.0",
        "series_instance_uid": longest_uid,
        "sop_instance_uid": "2.25.10",
        "body_part_examined": "CHEST",
    }
    assert (body["width"], body["height"]) == (1, 65535)


def test_every_kept_value_fits_its_column():
    """The reader's bounds are the columns': nothing it accepts can be refused by the
    database (the class of 500 this file guards against)."""
    from xrays.validation import KEPT_TAGS, read_dimension

    columns = {f.name: f for f in XrayImage._meta.get_fields() if hasattr(f, "max_length")}
    for kept in KEPT_TAGS:
        column = columns[kept.field]
        if kept.read is read_dimension:
            assert column.get_internal_type() == "PositiveIntegerField"
            assert kept.limit <= 2**31 - 1  # PositiveIntegerField's range everywhere
        else:
            assert kept.limit <= column.max_length, kept
