"""What an uploaded file really is, decided from its bytes (design §7).

Names and Content-Type headers are ignored. Images are checked by decoding
their headers only: Pillow (PNG/JPEG only, with its decompression-bomb limit)
and pydicom (tags, never pixel data), so memory does not grow with the image.
"""

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset

# pydicom's own reader of the file meta group alone (pinned pydicom 3.0).
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from core.errors import ApplicationError
from integrations.dicom import MAX_LENGTH, is_dicom_uid

from .models import XrayFormat

logger = logging.getLogger(__name__)

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

# A value of a kept tag is at most a UID (64 bytes); pydicom defers (does not read)
# values over its defer_size, and a value that long is never one of them.
MAX_KEPT_VALUE_BYTES = 1024
# Rows and Columns are US (PS3.5 6.2): at most 65535 pixels.
MAX_DIMENSION = 2**16 - 1


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"
    default_detail = "Only DICOM, PNG and JPEG images are accepted."


class CorruptImage(ApplicationError):
    code = "corrupt_image"
    default_detail = "The image is truncated or corrupt."


class BadValue(ValueError):
    """A header value that is not what its tag must hold; the message says why."""


def _one_text(value) -> str:
    if isinstance(value, MultiValue | list | tuple):
        raise BadValue(f"holds {len(value)} values where one is allowed")
    if not isinstance(value, str):
        raise BadValue(f"is not text (a {type(value).__name__})")
    return value.strip(" \0")  # DICOM pads text with a space, UIDs with NUL


def read_uid(value, limit: int) -> str:
    """A UI value (PS3.5 9.1): digits in dot-separated components without leading zeros."""
    text = _one_text(value)
    if text and not (len(text) <= limit and is_dicom_uid(text)):
        raise BadValue(
            "is not a DICOM UID (digits in dot-separated components without leading "
            f"zeros, at most {limit} characters)"
        )
    return text


def read_code(value, limit: int) -> str:
    """A CS value kept for display (Modality, BodyPartExamined): one printable ASCII
    value, never a NUL, another control character or a backslash."""
    text = _one_text(value)
    if len(text) > limit:
        raise BadValue(f"is longer than {limit} characters")
    if not all(" " <= c <= "~" and c != "\\" for c in text):
        raise BadValue("holds characters other than printable ASCII")
    return text


def read_dimension(value, limit: int) -> int:
    """Rows or Columns: one whole number of pixels from 1."""
    if isinstance(value, MultiValue | list | tuple):
        raise BadValue(f"holds {len(value)} values where one is allowed")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise BadValue(f"is not one whole number from 1 to {limit}")
    return int(value)


@dataclass(frozen=True)
class KeptTag:
    """A header value the service keeps: its column, how it is read, its bound.

    `limit`: the longest text (or largest number) the value may be: what its VR
    allows, and never more than its column holds. `informative`: only shown, never
    relied on; a bad value is dropped (the column stays empty) instead of refusing
    the image.
    """

    keyword: str
    field: str  # the XrayImage column (Rows: height, Columns: width)
    read: Callable[[object, int], str | int]
    limit: int
    informative: bool = False

    @property
    def name(self) -> str:
        return f"{self.keyword} {Tag(self.keyword)}"

    @property
    def empty(self) -> str | None:
        return None if self.read is read_dimension else ""


# Every value read out of a DICOM header and kept, read only through
# read_kept_tags. Patient-identifying tags are never read out.
KEPT_TAGS = (
    KeptTag("Modality", "dicom_modality", read_code, MAX_LENGTH["CS"], informative=True),
    KeptTag("StudyInstanceUID", "dicom_study_uid", read_uid, MAX_LENGTH["UI"]),
    KeptTag("SeriesInstanceUID", "dicom_series_uid", read_uid, MAX_LENGTH["UI"]),
    KeptTag("SOPInstanceUID", "dicom_sop_uid", read_uid, MAX_LENGTH["UI"]),
    KeptTag("BodyPartExamined", "dicom_body_part", read_code, MAX_LENGTH["CS"], informative=True),
    KeptTag("Rows", "height", read_dimension, MAX_DIMENSION),
    KeptTag("Columns", "width", read_dimension, MAX_DIMENSION),
)


def read_kept_tags(dataset: Dataset) -> dict:
    """column -> value for every kept tag; absent or empty: the column's empty value.

    A bad value (wrong VR, several values, out of range, too long, unreadable) is
    400 `corrupt_image` naming the tag, or dropped if the tag is informative.
    """
    values = {}
    for kept in KEPT_TAGS:
        try:
            value = _raw_value(dataset, kept.keyword)
            empty = value is None or (isinstance(value, str | bytes) and not value)
            values[kept.field] = kept.empty if empty else kept.read(value, kept.limit)
        except Exception as exc:  # pydicom's converters raise many types
            reason = str(exc) if isinstance(exc, BadValue) else "cannot be read"
            if not kept.informative:
                raise CorruptImage(f"The DICOM header's {kept.name} {reason}.") from None
            logger.info("dropped the DICOM header's %s: it %s", kept.name, reason)
            values[kept.field] = kept.empty
    return values


def _raw_value(dataset: Dataset, keyword: str):
    """The tag's value as pydicom converts it from the VR written in the file."""
    element = dataset.get_item(keyword, keep_deferred=True)
    if element is None:
        return None
    if (getattr(element, "length", 0) or 0) > MAX_KEPT_VALUE_BYTES:
        raise BadValue(f"is longer than {MAX_KEPT_VALUE_BYTES} bytes")  # never read
    return dataset[keyword].value


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
        transfer_syntax = meta.get("TransferSyntaxUID")
    except HeaderTooComplex:
        raise CorruptImage("The DICOM header is too large or nested too deeply.") from None
    except Exception as exc:  # whatever pydicom raises: see _inspect_dicom
        raise CorruptImage("The DICOM file cannot be read.") from exc
    finally:
        stream.seek(0)
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
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
    except Exception as exc:
        # pydicom parses hostile bytes: besides its own errors, its readers raise
        # struct.error, IndexError, OverflowError, NotImplementedError... on a header
        # they cannot follow. Whatever it raises here means "not a readable DICOM".
        raise CorruptImage("The DICOM file cannot be read.") from exc
    if depth > MAX_DICOM_SEQUENCE_DEPTH:
        raise CorruptImage("The DICOM header is too large or nested too deeply.")
    if pixel_data is None:
        raise CorruptImage("The DICOM file has no image (pixel data missing or truncated).")
    if not _dicom_pixels_complete(stream, size, pixel_data):
        raise CorruptImage("The DICOM pixel data is truncated.")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the values it converts
        tags = read_kept_tags(dataset)
    return ImageInfo(
        format=XrayFormat.DICOM,
        extension="dcm",
        content_type="application/dicom",
        width=tags.pop("width"),
        height=tags.pop("height"),
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
