"""What an uploaded file really is, decided from its bytes (DESIGN §7).

Names and Content-Type headers are ignored. Images are checked by decoding
their headers only: Pillow (PNG/JPEG only, with its decompression-bomb limit)
and pydicom (tags, never pixel data), so memory does not grow with the image.
"""

import warnings
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError

# pydicom's own reader of the file meta group alone (pinned pydicom 3.0).
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import DeflatedExplicitVRLittleEndian

from core.errors import ApplicationError

from .models import XrayFormat

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
DICOM_PREAMBLE = 128
DICOM_MAGIC = b"DICM"
# (FFFE,E0DD) sequence delimitation item: the last 8 bytes of encapsulated pixel data.
DICOM_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
PIXEL_DATA_TAG = (0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF
# What one DICOM header may cost: bytes pydicom reads (values over defer_size are
# skipped, not read) and how deeply sequences nest. Real X-ray headers read tens of
# kilobytes and nest two or three levels.
MAX_DICOM_HEADER_READ = 256 * 1024
MAX_DICOM_SEQUENCE_DEPTH = 8

# Tags kept from DICOM files (DESIGN §7). Patient-identifying tags are never read out.
DICOM_TAGS = {
    "Modality": "dicom_modality",
    "StudyInstanceUID": "dicom_study_uid",
    "SeriesInstanceUID": "dicom_series_uid",
    "SOPInstanceUID": "dicom_sop_uid",
    "BodyPartExamined": "dicom_body_part",
}


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"
    default_detail = "Only DICOM, PNG and JPEG images are accepted."


class CorruptImage(ApplicationError):
    code = "corrupt_image"
    default_detail = "The image is truncated or corrupt."


@dataclass
class ImageInfo:
    format: XrayFormat
    extension: str
    content_type: str
    width: int | None = None
    height: int | None = None
    dicom: dict = field(default_factory=dict)


def sniff_format(head: bytes) -> XrayFormat:
    """The format named by the file's magic bytes; 415 for anything else."""
    if head.startswith(PNG_SIGNATURE):
        return XrayFormat.PNG
    if head.startswith(JPEG_SIGNATURE):
        return XrayFormat.JPEG
    if head[DICOM_PREAMBLE : DICOM_PREAMBLE + 4] == DICOM_MAGIC:
        return XrayFormat.DICOM
    raise UnsupportedMediaType()


def inspect_image(stream: BinaryIO, size: int) -> ImageInfo:
    """Identify and check an uploaded file; raises 415 or 400 with a clear code."""
    if size == 0:
        raise CorruptImage("The file is empty.", code="empty_file")
    stream.seek(0)
    kind = sniff_format(stream.read(DICOM_PREAMBLE + 4))
    stream.seek(0)
    try:
        if kind == XrayFormat.DICOM:
            return _inspect_dicom(stream, size)
        return _inspect_raster(stream, size, kind)
    finally:
        stream.seek(0)


def _inspect_raster(stream: BinaryIO, size: int, kind: str) -> ImageInfo:
    pil_format = "PNG" if kind == XrayFormat.PNG else "JPEG"
    try:
        with warnings.catch_warnings():
            # Over MAX_IMAGE_PIXELS Pillow only warns; treat it as the bomb it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream, formats=[pil_format]) as image:
                width, height = image.size
                # verify() walks the chunks (PNG: CRCs up to IEND) without decoding pixels.
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptImage(
            "The image declares more pixels than allowed.", code="image_too_large"
        ) from exc
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, EOFError) as exc:
        raise CorruptImage() from exc
    if kind == XrayFormat.JPEG and not _jpeg_has_end_marker(stream, size):
        raise CorruptImage("The JPEG image is truncated.")
    return ImageInfo(
        format=kind,
        extension="png" if kind == XrayFormat.PNG else "jpg",
        content_type=f"image/{kind}",
        width=width,
        height=height,
    )


def _jpeg_has_end_marker(stream: BinaryIO, size: int) -> bool:
    # Encoders may pad after EOI; look at the tail rather than the very last bytes.
    tail = min(size, 1024)
    stream.seek(size - tail)
    return JPEG_EOI in stream.read(tail)


class _HeaderBudget:
    """A read-only view of the upload that allows reading at most `budget` bytes.

    pydicom reads every element header and every value up to defer_size, and
    seeks past larger ones (pixel data): what it *reads* is the header's own
    work, so capping it caps the time and memory one header may cost, however
    many tiny elements a file packs in.
    """

    def __init__(self, stream: BinaryIO, budget: int):
        self._stream, self._left = stream, budget

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise HeaderTooComplex("The DICOM header is larger than allowed.")
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


class HeaderTooComplex(Exception):
    pass


def _sequence_depth(dataset) -> int:
    """How deeply sequences nest in `dataset`, walked iteratively up to the limit.

    pydicom parses a defined-length sequence only when it is accessed, one level
    at a time, so this walk (not a recursion) decides how deep it goes. Values it
    deferred (over defer_size) are never parsed here, nor anywhere in validation.
    """
    deepest, stack = 0, [(dataset, 0)]
    while stack and deepest <= MAX_DICOM_SEQUENCE_DEPTH:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        for tag in tuple(current.keys()):  # not `in current`: that reads deferred values
            # Raw and as read: a deferred value (None; pixel data) is not read here.
            # (Dataset.elements() reads deferred values, through the header budget.)
            element = current.get_item(tag, keep_deferred=True)
            if element.VR == "SQ" and element.value is not None:
                items = current[tag].value  # this sequence's items, parsed
                stack.extend((item, depth + 1) for item in items)
    return deepest


def _refuse_deflated(stream: BinaryIO) -> None:
    """415 for a deflated dataset (transfer syntax 1.2.840.10008.1.2.1.99).

    pydicom inflates such a dataset whole, in memory, before reading a single tag:
    a few hundred kilobytes of deflate can inflate to gigabytes (a zip bomb), and
    the pixel data could not be streamed anywhere afterwards. Field devices send
    uncompressed or image-compressed DICOM; a deflated one is refused up front.
    """
    try:
        read_preamble(stream, False)
        meta = _read_file_meta_info(_HeaderBudget(stream, MAX_DICOM_HEADER_READ))
    except HeaderTooComplex:
        raise CorruptImage("The DICOM header is too large or nested too deeply.") from None
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise CorruptImage("The DICOM file cannot be read.") from exc
    finally:
        stream.seek(0)
    if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        raise UnsupportedMediaType(
            "Deflated DICOM is not accepted: send it uncompressed or image-compressed."
        )


def _inspect_dicom(stream: BinaryIO, size: int) -> ImageInfo:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _refuse_deflated(stream)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # defer_size: large values (pixel data) are skipped, not read into memory.
            dataset = pydicom.dcmread(
                _HeaderBudget(stream, MAX_DICOM_HEADER_READ), defer_size=1024, force=False
            )
            pixel_data = dataset.get_item(PIXEL_DATA_TAG, keep_deferred=True)
            depth = _sequence_depth(dataset)
    except (HeaderTooComplex, RecursionError):
        # Refused without its traceback: a recursion's would be thousands of lines.
        raise CorruptImage("The DICOM header is too large or nested too deeply.") from None
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise CorruptImage("The DICOM file cannot be read.") from exc
    if depth > MAX_DICOM_SEQUENCE_DEPTH:
        raise CorruptImage("The DICOM header is too large or nested too deeply.")
    if pixel_data is None:
        raise CorruptImage("The DICOM file has no image (pixel data missing or truncated).")
    if not _dicom_pixels_complete(stream, size, pixel_data):
        raise CorruptImage("The DICOM pixel data is truncated.")

    tags = {}
    for keyword, name in DICOM_TAGS.items():
        value = dataset.get(keyword)
        tags[name] = str(value).strip()[:128] if value not in (None, "") else ""
    rows, columns = dataset.get("Rows"), dataset.get("Columns")
    return ImageInfo(
        format=XrayFormat.DICOM,
        extension="dcm",
        content_type="application/dicom",
        width=int(columns) if columns else None,
        height=int(rows) if rows else None,
        dicom=tags,
    )


def _dicom_pixels_complete(stream: BinaryIO, size: int, element) -> bool:
    length = getattr(element, "length", None)
    offset = getattr(element, "value_tell", None)
    if length is None or offset is None:
        return True  # read in full (small): pydicom had all its bytes
    if length == UNDEFINED_LENGTH:  # encapsulated (compressed) frames
        stream.seek(max(0, size - len(DICOM_SEQUENCE_DELIMITER)))
        return stream.read() == DICOM_SEQUENCE_DELIMITER
    return offset + length <= size
