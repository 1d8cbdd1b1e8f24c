"""Real sample data and a corpus of bad inputs for X-ray uploads."""

import io
import struct
import zlib

from PIL import Image
from pydicom.data import get_testdata_file

DICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")


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


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny, valid-looking PNG whose header declares a gigantic canvas."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


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
    }
