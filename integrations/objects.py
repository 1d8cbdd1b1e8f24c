"""Reading stored objects without holding them in memory (for the DICOMweb transport).

`default_storage.open()` on S3 (django-storages) downloads the whole object into a
SpooledTemporaryFile whose default size limit is 0, which means *never* spooled
to disk: a 200 MB X-ray would sit in the worker's memory. Here an S3 object is
read with ranged GETs instead: a seekable, buffered reader for parsing a header,
and one streaming GET for copying the rest. On the filesystem both are the file.
"""

import io
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import default_storage

from core.storage import uses_s3

CHUNK = 1024 * 1024


class ObjectMissing(Exception):
    """The stored object does not exist (any more)."""


def _s3_client():
    return default_storage.connection.meta.client


def _s3_key(name: str) -> str:
    return default_storage._normalize_name(name)


def _s3_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


class _S3RangeReader(io.RawIOBase):
    """A raw, seekable view of one S3 object: every read is one ranged GET."""

    def __init__(self, name: str, size: int):
        self._key, self._size, self._position = _s3_key(name), size, 0
        self.name = name  # readers (pydicom) ask for one

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        end = self._position + wanted - 1
        body = _s3_client().get_object(
            Bucket=default_storage.bucket_name, Key=self._key, Range=f"bytes={self._position}-{end}"
        )["Body"]
        data = body.read()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def object_size(name: str) -> int:
    """The stored object's size in bytes; ObjectMissing if it is not there."""
    try:
        return default_storage.size(name)
    except FileNotFoundError as exc:
        raise ObjectMissing(name) from exc
    except Exception as exc:
        if _s3_missing(exc):
            raise ObjectMissing(name) from exc
        raise


def open_seekable(name: str, size: int) -> BinaryIO:
    """A seekable binary reader of the object that holds at most CHUNK bytes at a time."""
    if uses_s3():
        return io.BufferedReader(_S3RangeReader(name, size), buffer_size=256 * 1024)
    try:
        return default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise ObjectMissing(name) from exc


def iter_object(name: str, start: int = 0, chunk: int = CHUNK) -> Iterator[bytes]:
    """The object's bytes from `start` to its end, `chunk` at a time."""
    if uses_s3():
        if start >= object_size(name):
            return  # S3 answers 416 to a range that starts at the end
        try:
            body = _s3_client().get_object(
                Bucket=default_storage.bucket_name, Key=_s3_key(name), Range=f"bytes={start}-"
            )["Body"]
        except Exception as exc:
            if _s3_missing(exc):
                raise ObjectMissing(name) from exc
            raise
        try:
            yield from body.iter_chunks(chunk)
        finally:
            body.close()
        return
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise ObjectMissing(name) from exc
    with handle:
        handle.seek(start)
        while data := handle.read(chunk):
            yield data
