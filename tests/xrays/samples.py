"""Real sample data and a corpus of bad inputs for X-ray uploads."""

import functools
import io
import struct
import zlib

from PIL import Image
from pydicom.data import get_testdata_file

# RG1_UNCR.dcm (pydicom-data): a real chest CR X-ray, 7 MB of pixel data.
DICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "RG1_UNCR.dcm")


def dicom_bytes(name: str = "CT_small.dcm") -> bytes:
    with open(get_testdata_file(name, download=False), "rb") as handle:
        return handle.read()


def image_bytes(fmt: str = "PNG", size=(320, 240), color=(200, 30, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    return buffer.getvalue()


def noise_png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG that does not compress (random pixels): its size follows its dimensions."""
    import random

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def large_dicom(pixel_bytes: int) -> bytes:
    """A valid uncompressed DICOM with `pixel_bytes` of random 16-bit pixels, 2048 wide."""
    import os

    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for tag in [elem.tag for elem in ds if elem.tag >= 0x7FE00010]:
        del ds[tag]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Columns, ds.Rows = 2048, pixel_bytes // (2048 * 2)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    header = buffer.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)
    return header + os.urandom(pixel_bytes)


class Raw(bytes):
    """An element value written byte for byte, whatever its VR says it should be."""


def dicom_with_elements(elements: dict, name: str = "MR_small.dcm") -> bytes:
    """A real DICOM with header elements written as given, in explicit VR little endian
    (so the VR given is the VR in the file): keyword -> (VR, value), or None to remove.

    pydicom writes what it is given (its writing validation only warns), so values a
    tag must never hold reach the file as they would from a broken device; a `Raw`
    value goes into the file as those bytes (any VR, even one DICOM does not have).
    """
    import warnings

    import pydicom
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.tag import Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(get_testdata_file(name, download=False))
        for keyword, element in elements.items():
            tag = Tag(keyword)
            if tag in ds:
                del ds[tag]
            if element is None:
                continue
            vr, value = element
            if isinstance(value, Raw):
                ds._dict[tag] = RawDataElement(tag, vr, len(value), bytes(value), 0, False, True)
            else:
                ds.add(DataElement(tag, vr, value))
        buffer = io.BytesIO()
        # As read (preamble, file meta): nothing is derived from the changed elements.
        pydicom.dcmwrite(buffer, ds)
    return buffer.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny, valid-looking PNG whose header declares a gigantic canvas."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _explicit_sq(length: int) -> bytes:
    """(0008,1115) Referenced Series Sequence, explicit VR little endian."""
    return struct.pack("<HH", 0x0008, 0x1115) + b"SQ\0\0" + struct.pack("<I", length)


def _item(length: int) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, length)


UNDEFINED = 0xFFFFFFFF


def dicom_with(inserted: bytes, name: str = "CT_small.dcm") -> bytes:
    """A real DICOM file with `inserted` elements placed just before its pixel data."""
    base = dicom_bytes(name)
    pixels = base.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010), explicit VR LE
    return base[:pixels] + inserted + base[pixels:]


def nested_sequences(depth: int, *, defined_length: bool = False) -> bytes:
    """Sequences nested `depth` deep, each holding one item holding the next."""
    if defined_length:
        inner = b""
        for _ in range(depth):
            item = _item(len(inner)) + inner
            inner = _explicit_sq(len(item)) + item
        return inner
    opening = (_explicit_sq(UNDEFINED) + _item(UNDEFINED)) * depth
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return opening + closing * depth


def tiny_private_elements(count: int) -> bytes:
    """`count` 10-byte private LO elements: a wide header that costs work to parse."""
    return b"".join(
        struct.pack("<HH", 0x0009, 0x1000 + i % 0xEFFF) + b"LO" + struct.pack("<H", 2) + b"ab"
        for i in range(count)
    )


@functools.cache
def bad_inputs() -> dict[str, tuple[bytes, int, str]]:
    """name -> (content, expected HTTP status, expected code)."""
    png, jpeg, dicom = image_bytes("PNG"), image_bytes("JPEG"), dicom_bytes()
    return {
        "text_renamed_png": (b"just some text, not an image\n" * 20, 415, "unsupported_media_type"),
        "pdf": (b"%PDF-1.7\n" + b"0" * 500, 415, "unsupported_media_type"),
        "gif": (image_bytes("GIF", mode="P", color=1), 415, "unsupported_media_type"),
        "empty": (b"", 400, "empty_file"),
        "truncated_png": (png[: len(png) // 2], 400, "corrupt_image"),
        "truncated_jpeg": (jpeg[: len(jpeg) - 40], 400, "corrupt_image"),
        "truncated_dicom": (dicom[: len(dicom) - 2000], 400, "corrupt_image"),
        "dicom_header_only": (dicom[:700], 400, "corrupt_image"),
        "png_signature_only": (png[:8], 400, "corrupt_image"),
        "decompression_bomb": (png_bomb(), 400, "image_too_large"),
        # 18 KB, 500 undefined-length sequences deep: once a 500 and 360 KB of log.
        "dicom_nested_sequences": (dicom_with(nested_sequences(500)), 400, "corrupt_image"),
        "dicom_nested_defined_sequences": (
            dicom_with(nested_sequences(9, defined_length=True)),
            400,
            "corrupt_image",
        ),
        "dicom_wide_header": (dicom_with(tiny_private_elements(300_000)), 400, "corrupt_image"),
        # Inflated whole in memory by pydicom: a zip bomb's way in. Refused up front.
        "dicom_deflated": (dicom_bytes("image_dfl.dcm"), 415, "unsupported_media_type"),
        "dicom_deflated_truncated": (
            dicom_bytes("image_dfl.dcm")[:-500],
            415,
            "unsupported_media_type",
        ),
    }
