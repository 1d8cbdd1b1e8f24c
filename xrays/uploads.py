"""Streaming upload handling: spool to disk, hash and count on the way in.

The file is never held in memory; its sha256 and size are known when the body
has been read, and a body over XRAY_MAX_UPLOAD_BYTES is stopped as soon as it
crosses the limit instead of being written out in full.
"""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from core.errors import ApplicationError

# Room for the multipart boundaries and the small form fields around the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


class FileTooLarge(ApplicationError):
    status_code = 413
    code = "file_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The upload exceeds the limit of {limit} bytes.")


def largest_body() -> int:
    """The largest request body that can carry an X-ray: the file and its form. The
    ASGI server refuses a larger one before reading it (core.asgi, max_body_bytes)."""
    return settings.XRAY_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def check_declared_size(content_length: str | None) -> None:
    """Refuse before reading a byte when the declared body is already too large."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        return  # the parser will reject a nonsense length
    if declared > largest_body():
        raise FileTooLarge(settings.XRAY_MAX_UPLOAD_BYTES)


class HashingTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Writes each file to a temporary file, hashing it and enforcing the size limit."""

    # 1 MiB pieces instead of Django's 64 KiB: a 200 MB X-ray is parsed, hashed and
    # written in ~200 steps instead of ~3,200, with memory still bounded.
    chunk_size = 1024 * 1024

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._sha256 = hashlib.sha256()
        self._received = 0
        self._limit = settings.XRAY_MAX_UPLOAD_BYTES

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > self._limit:
            self.file.close()  # deletes the partial temporary file
            raise FileTooLarge(self._limit)
        self._sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self._sha256.hexdigest()
        return uploaded
