"""The DICOM copy a PACS receives (design §15), built without loading the image.

A domain app describes the copy (`CopyRequest`): where the original is stored, its
format, the identifiers to set on it, and for a PNG/JPEG the UIDs and tags of the
Secondary Capture that wraps it. Nothing here knows what an X-ray record is.

- DICOM: the header up to the pixel data is read (pydicom, stop_before_pixels), the
  identifiers are set, the header is encoded again in the file's own transfer syntax,
  and the rest of the file (pixel data and anything after it) is copied from storage
  byte for byte as a stream. The stored original is never changed. (A deflated
  dataset has no pixel data to splice at; uploads refuse those.)
- PNG/JPEG: decoded (Pillow) and wrapped as a Secondary Capture Image (uncompressed,
  explicit VR little endian) with the identifiers and the described tags. Pillow's
  decompression-bomb limit, checked at upload, bounds its memory.
"""

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import pydicom
from PIL import Image
from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

from .objects import iter_object, object_size, open_seekable

# Tags a copy may have set, and the longest value each VR allows (PS3.5 6.2).
MAX_LENGTH = {"SH": 16, "LO": 64, "PN": 64, "CS": 16, "DA": 8, "TM": 14, "DT": 26, "UI": 64}
# UI (PS3.5 9.1): components of digits separated by dots, none empty, none with a
# leading zero (but "0" itself), at most 64 characters.
UID_SYNTAX = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
# A header (everything before the pixel data) larger than this is not re-encoded.
MAX_HEADER_BYTES = 64 * 1024 * 1024
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)


def is_dicom_uid(value: str) -> bool:
    """True for a well-formed DICOM UID (the UI value representation)."""
    return len(value) <= MAX_LENGTH["UI"] and UID_SYNTAX.fullmatch(value) is not None


class CopyRefused(ValueError):
    """The copy cannot be built from this object or with these values (permanent)."""


@dataclass(frozen=True)
class CopyRequest:
    """What to send: built by the domain app, carried in the outbox payload."""

    key: str  # storage key of the original
    format: str  # "dicom", "png" or "jpeg"
    # Set on every copy: DICOM keyword -> value (e.g. AccessionNumber, PatientID).
    identifiers: dict[str, str]
    # For a wrapped PNG/JPEG: its Study/Series/SOP Instance UIDs and other tags.
    secondary_capture: dict[str, str] = field(default_factory=dict)
    # The study the copy must go to, as the domain knows it (DICOM: the UID read at
    # upload, or the one minted for the copy); the PACS refuses an instance of another
    # study (409).
    study_uid: str = ""
    # For a DICOM: UIDs the copy carries instead of the file's (keyword -> the file's
    # UID as recorded, the copy's), so no two copies in the PACS share them.
    minted_uids: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict) -> "CopyRequest":
        try:
            return cls(
                key=str(payload["key"]),
                format=str(payload["format"]),
                identifiers=dict(payload["identifiers"]),
                secondary_capture=dict(payload.get("secondary_capture") or {}),
                study_uid=str(payload.get("study_instance_uid") or ""),
                minted_uids={
                    str(keyword): (str(uids["original"]), str(uids["copy"]))
                    for keyword, uids in dict(payload.get("minted_uids") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CopyRefused(f"incomplete copy description ({exc.__class__.__name__})") from exc


@dataclass
class DicomCopy:
    """One DICOM part: `head` (in memory) then `tail_length` bytes of the original."""

    head: bytes
    key: str
    tail_start: int
    tail_length: int
    study_uid: str
    series_uid: str
    sop_uid: str

    @property
    def length(self) -> int:
        return len(self.head) + self.tail_length

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        if self.tail_length:
            yield from iter_object(self.key, self.tail_start)


def _checked(keyword: str, value, *, utf8: bool = False) -> str:
    """A value that stays one DICOM value of the keyword's VR, or CopyRefused.

    Non-ASCII only where the dataset declares UTF-8 (`utf8`: the Secondary Captures).
    """
    if keyword not in keyword_dict:
        raise CopyRefused(f"unknown DICOM keyword {keyword!r}")
    vr = dictionary_VR(keyword_dict[keyword])
    if vr not in MAX_LENGTH:
        raise CopyRefused(f"{keyword} ({vr}) cannot be set on a copy")
    value = "" if value is None else str(value)
    # A backslash separates values in DICOM; control characters and non-ASCII would
    # need a character set the file may not declare. Neither is silently altered.
    if "\\" in value or not (utf8 or value.isascii()) or any(ord(c) < 32 for c in value):
        raise CopyRefused(
            f"{keyword} value is not plain ASCII without backslashes; it cannot be sent as is"
        )
    if vr == "UI" and not is_dicom_uid(value):
        raise CopyRefused(f"{keyword} value is not a DICOM UID")
    return value


def _set(dataset: Dataset, values: dict[str, str], *, utf8: bool = False) -> None:
    for keyword, value in values.items():
        setattr(dataset, keyword, _checked(keyword, value, utf8=utf8))


def build_copy(request: CopyRequest) -> DicomCopy:
    """The DICOM part for this request (reads the stored header or image)."""
    size = object_size(request.key)
    if request.format == "dicom":
        return _coerced_dicom(request, size)
    if request.format in ("png", "jpeg"):
        return _secondary_capture(request, size)
    raise CopyRefused(f"no DICOM copy for format {request.format!r}")


def _read_header(reader) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(reader, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, ValueError, EOFError, KeyError, TypeError) as exc:
        reason = exc.__class__.__name__
        raise CopyRefused(f"the stored DICOM header cannot be read ({reason})") from exc


def _encode(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # An identifier longer than its VR allows is sent as is (docs/decisions.md).
            warnings.simplefilter("ignore")
            pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        # E.g. a file meta group without a transfer syntax, or a value pydicom cannot
        # encode: no copy can be made of this header, however often it is tried.
        reason = exc.__class__.__name__
        raise CopyRefused(f"the DICOM header cannot be encoded again ({reason})") from exc
    return buffer.getvalue()


def _uids(dataset: Dataset) -> dict:
    return {
        "study_uid": str(dataset.get("StudyInstanceUID", "")),
        "series_uid": str(dataset.get("SeriesInstanceUID", "")),
        "sop_uid": str(dataset.get("SOPInstanceUID", "")),
    }


def _coerced_dicom(request: CopyRequest, size: int) -> DicomCopy:
    with open_seekable(request.key, size) as reader:
        dataset = _read_header(reader)
        pixels_at = reader.tell()
        transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
        if transfer_syntax == DeflatedExplicitVRLittleEndian:
            # The pixel data is inside the compressed stream: nothing to splice, and
            # inflating it whole is what uploads refuse (xrays.validation).
            raise CopyRefused("a deflated DICOM dataset is not sent")
        if pixels_at > MAX_HEADER_BYTES:
            raise CopyRefused("the DICOM header is too large to re-encode")
        reader.seek(pixels_at)
        ahead = reader.read(4)
    tail = 0
    if len(ahead) == 4:
        little = int.from_bytes(ahead[:2], "little") << 16 | int.from_bytes(ahead[2:], "little")
        big = int.from_bytes(ahead[:2], "big") << 16 | int.from_bytes(ahead[2:], "big")
        if little not in PIXEL_TAGS and big not in PIXEL_TAGS:
            raise CopyRefused("the DICOM header does not end at the pixel data")
        tail = size - pixels_at
    # Group lengths (retired) would be wrong once a value changes; they are optional.
    for element in [e for e in dataset if e.tag.element == 0]:
        del dataset[element.tag]
    _set(dataset, request.identifiers)
    _mint(dataset, request.minted_uids)
    head = _encode(dataset)
    return DicomCopy(head, request.key, pixels_at, tail, **_uids(dataset))


MINTABLE = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _mint(dataset: Dataset, minted: dict[str, tuple[str, str]]) -> None:
    """Put the minted UIDs on the copy, where it still holds the recorded ones.

    An object that no longer holds the UID recorded at upload is not the one the
    record describes: refused rather than relabelled (as the PACS refuses an instance
    of another study).
    """
    unknown = sorted(set(minted) - set(MINTABLE))
    if unknown:
        raise CopyRefused(f"{unknown[0]} is not a UID a copy may change")
    for keyword in (k for k in MINTABLE if k in minted):  # (a JSON column reorders keys)
        original, copy = minted[keyword]
        if str(dataset.get(keyword, "") or "").strip(" \0") != original:
            raise CopyRefused(f"the stored DICOM's {keyword} is not the one recorded at upload")
        setattr(dataset, keyword, _checked(keyword, copy))
        if keyword == "SOPInstanceUID":
            dataset.file_meta.MediaStorageSOPInstanceUID = copy


def _pixels(image: Image.Image) -> tuple[Image.Image, dict]:
    """The image in a mode DICOM stores uncompressed, and its pixel description."""
    if image.mode.startswith("I"):
        image = image if image.mode == "I;16" else image.convert("I;16")
        bits, samples = 16, {"SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2"}
    elif image.mode in ("1", "L", "LA"):
        image = image.convert("L")
        bits, samples = 8, {"SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2"}
    else:
        image = image.convert("RGB")
        bits, samples = (
            8,
            {
                "SamplesPerPixel": 3,
                "PhotometricInterpretation": "RGB",
                "PlanarConfiguration": 0,
            },
        )
    return image, {**samples, "BitsAllocated": bits, "BitsStored": bits, "HighBit": bits - 1}


def _secondary_capture(request: CopyRequest, size: int) -> DicomCopy:
    described = dict(request.secondary_capture)
    uids = {
        keyword: described.pop(keyword, "")
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    }
    if not all(uids.values()):
        raise CopyRefused("a Secondary Capture needs its Study, Series and SOP Instance UIDs")
    with open_seekable(request.key, size) as reader:
        try:
            with Image.open(reader, formats=["PNG" if request.format == "png" else "JPEG"]) as img:
                img.load()
                image, description = _pixels(img)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            reason = exc.__class__.__name__
            raise CopyRefused(f"the stored image cannot be decoded ({reason})") from exc

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = _checked("SOPInstanceUID", uids["SOPInstanceUID"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names are not all ASCII
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    _set(dataset, uids)
    dataset.Modality = "OT"
    dataset.ConversionType = "WSD"  # a workstation's (the device's) image, wrapped
    dataset.SeriesNumber = "1"
    dataset.InstanceNumber = "1"
    dataset.PatientName = ""
    dataset.PatientBirthDate = ""
    dataset.PatientSex = ""
    dataset.ReferringPhysicianName = ""
    dataset.StudyID = ""
    _set(dataset, described, utf8=True)
    _set(dataset, request.identifiers, utf8=True)
    dataset.Rows, dataset.Columns = image.height, image.width
    for keyword, value in description.items():
        setattr(dataset, keyword, value)
    dataset.PixelRepresentation = 0
    raw = image.tobytes()
    if len(raw) % 2:
        raw += b"\0"  # values have an even length
    dataset.PixelData = raw
    dataset["PixelData"].VR = "OW" if description["BitsAllocated"] == 16 else "OB"
    head = _encode(dataset)
    return DicomCopy(head, request.key, size, 0, **_uids(dataset))
