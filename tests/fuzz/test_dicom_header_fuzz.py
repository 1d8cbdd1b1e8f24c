"""DICOM header fuzzing (hypothesis + pydicom): generated VRs and values written into
the tags the service reads, through both ways in, on PostgreSQL.

Each example is a real DICOM (pydicom-data's MR_small) with one to three of those
tags (the ones it keeps, and the pixel data it checks) removed or rewritten: with
any VR (also ones DICOM does not have), several values, values out of range or too
long, NULs and backslashes, or raw bytes whatever the VR says. Uploaded by the
multipart POST and through a resumable session, the answer is only ever 201, 400 or
415 (never a 500), a session ends `completed` or `failed` (never stuck `completing`),
what is kept fits its column, and nothing refused stays in storage.

The seed is new on every run and printed in the pytest header and summary, and with
a failure; DICOM_FUZZ_SEED=<n> reproduces a run, DICOM_FUZZ_EXAMPLES (40) sets the
examples per path.
"""

import itertools
import os
import struct
import warnings

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from integrations.dicom import is_dicom_uid
from tests.factories import put_on_task
from tests.fuzz.seeded import run_seeded
from tests.helpers import client_for, stored_keys, upload, upload_in_session
from tests.xrays.samples import Raw, dicom_with_elements
from xrays.models import UploadState, XrayImage, XrayUploadSession
from xrays.validation import KEPT_TAGS

SEED = int(os.environ["DICOM_FUZZ_SEED"])  # set (and printed) by tests/conftest.py
EXAMPLES = int(os.environ.get("DICOM_FUZZ_EXAMPLES", "40"))

pytestmark = [pytest.mark.postgres]

FUZZED_TAGS = [kept.keyword for kept in KEPT_TAGS] + ["PixelData"]
TEXT_VRS = ["AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR"]
INTEGER_VRS = {
    "US": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "UV": (0, 2**64 - 1),
    "SV": (-(2**63), 2**63 - 1),
}
BINARY_VRS = ["OB", "OD", "OF", "OL", "OV", "OW", "UN"]
ALL_VRS = [*TEXT_VRS, "UT", "DS", "IS", *INTEGER_VRS, "FL", "FD", *BINARY_VRS, "AT", "SQ"]
# Values that broke readers before, and the edges of the rules that hold now.
EDGES = [
    "",
    "..",
    "0",
    "00",
    "1.02.3",
    "1..2",
    ".1",
    "1.",
    "1.2.840.10008.5.1.4.1.1.4",
    "1." + "2" * 62,
    "1." + "2" * 63,
    "a\x00b",
    "\x00",
    "CR\\DX",
    "X" * 16,
    "X" * 17,
    "NaN",
    "1e400",
    "-5",
    "0",
    "65535",
    "65536",
    "99999999999",
    "abc",
    " 64",
    "é",
]

texts = st.one_of(
    st.sampled_from(EDGES),
    st.text(st.characters(codec="latin-1"), max_size=70),
    st.lists(st.text(st.characters(codec="ascii"), max_size=8), min_size=2, max_size=3),
)


def values_for(vr: str):
    """Python values pydicom encodes for `vr` (several values sometimes)."""
    if vr in TEXT_VRS or vr == "UT":
        return texts
    if vr == "DS":
        return st.one_of(
            st.sampled_from(["NaN", "1e400", "-0", "64", "64.0", "1e-400", "-5.5"]),
            st.floats(width=32).map(lambda f: repr(f)[:16]),
        )
    if vr == "IS":
        return st.one_of(st.sampled_from(EDGES[-12:-3]), st.integers(-(2**40), 2**40).map(str))
    if vr in INTEGER_VRS:
        numbers = st.integers(*INTEGER_VRS[vr])
        return st.one_of(numbers, st.lists(numbers, min_size=2, max_size=3))
    if vr in ("FL", "FD"):
        numbers = st.floats(width=32 if vr == "FL" else 64)
        return st.one_of(numbers, st.lists(numbers, min_size=2, max_size=3))
    if vr == "AT":
        return st.integers(0, 2**32 - 1)
    if vr == "SQ":
        return st.just([])
    return st.binary(max_size=16).map(lambda b: b.ljust(8 * (len(b) // 8 + 1), b"\0"))


@st.composite
def element(draw):
    """(VR, value) for one tag: encoded by pydicom, or raw bytes under any VR."""
    if draw(st.booleans()):
        vr = draw(st.sampled_from(ALL_VRS))
        return vr, draw(values_for(vr))
    vr = draw(st.sampled_from([*ALL_VRS, "XX"]))
    data = draw(
        st.one_of(
            st.sampled_from([e.encode("latin-1") for e in EDGES]),
            st.binary(max_size=24),
            st.integers(0, 2**16 - 1).map(lambda n: struct.pack("<H", n)),
        )
    )
    return vr, Raw(data + b"\0" * (len(data) % 2))  # values have an even length


headers = st.dictionaries(
    st.sampled_from(FUZZED_TAGS), st.none() | element(), min_size=1, max_size=3
)
_nonce = itertools.count()


def dicom_for(changes: dict) -> bytes:
    """The example's file; a nonce keeps any two examples from being the same image
    (which the service would answer with the first record, 200)."""
    elements = {**changes, "ImageComments": ("LT", f"fuzz {next(_nonce)}")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dicom_with_elements(elements)
    except Exception:  # pydicom raises many types for a value it cannot write
        reject()  # no file to upload: pydicom cannot write this value at all


def run(check) -> None:
    """Run a property with this run's seed; a failure names the seed that repeats it."""
    run_seeded(
        check,
        seed_value=SEED,
        examples=EXAMPLES,
        repeat_with=f"DICOM header fuzzing: DICOM_FUZZ_SEED={SEED} repeats this run",
    )


def assert_answer(response) -> None:
    assert response.status_code in (201, 400, 415), (response.status_code, response.content)
    body = response.json()
    if response.status_code == 201:
        kept = body["dicom"]
        for name in ("study_instance_uid", "series_instance_uid", "sop_instance_uid"):
            assert kept[name] == "" or is_dicom_uid(kept[name]), kept
        for name in ("modality", "body_part_examined"):
            assert len(kept[name]) <= 16 and kept[name].isprintable(), kept
        for size in (body["width"], body["height"]):
            assert size is None or 1 <= size <= 65535, body
    else:
        assert body["code"] in ("corrupt_image", "unsupported_media_type"), body
    # Refused bytes never stay: every stored object is a record's.
    assert sorted(stored_keys()) == sorted(x.file.name for x in XrayImage.objects.all())


@pytest.fixture
def device(paramedic):
    return client_for(paramedic.user), paramedic, put_on_task(paramedic)


def test_the_multipart_upload_answers_201_400_or_415(device):
    client, paramedic, task = device

    @given(changes=headers)
    def check(changes):
        assert_answer(upload(client, paramedic, task, dicom_for(changes)))

    run(check)


def test_an_upload_session_ends_completed_or_failed(device):
    client, paramedic, task = device

    @given(changes=headers)
    def check(changes):
        session_id, response = upload_in_session(client, paramedic, task, dicom_for(changes))
        assert_answer(response)
        session = XrayUploadSession.objects.get(pk=session_id)
        expected = UploadState.COMPLETED if response.status_code == 201 else UploadState.FAILED
        assert session.state == expected, (session.state, session.failure_detail)

    run(check)
