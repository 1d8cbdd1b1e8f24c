"""Multipart uploads straight to storage (design §13): one protocol, two stores.

S3 mode: an S3 multipart upload; the device PUTs each part to a presigned URL,
and S3 checks each URL's signature and expiry (a URL names one key, one upload
id and one part number, so it cannot write anywhere else). Filesystem mode
(the embedded default): the same shape, with parts PUT to the service itself
(xrays.views.XrayUploadPartView) under a signed, expiring token for one part of
one session, stored next to the media files until completion joins them.

The service reads the joined object back only through `open_ranged` (seekable,
ranged reads with one small block in memory) and `iter_bytes` (a stream in
fixed pieces), so checking a 200 MB X-ray never holds it in memory.
"""

import hashlib
import os
import shutil
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError
from django.core.files.storage import default_storage

from core.storage import uses_s3

from .part_tokens import part_url

# What one ranged read fetches: large enough that header parsing (many small
# reads) costs a handful of requests, small enough to be irrelevant to memory.
RANGE_BLOCK_BYTES = 1024 * 1024
# Pieces in which the joined object is streamed through sha256.
STREAM_PIECE_BYTES = 1024 * 1024
# From S3 those pieces are ranged GETs, this many in flight and yielded in order: the
# network and the hashing overlap (one stream left the hashing idle while it waited),
# with at most this many pieces in memory, whatever the object's size.
STREAM_PIECES_IN_FLIGHT = 4
# Where filesystem mode keeps received parts until completion joins them.
LOCAL_PARTS_DIR = "uploads"


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    started_at: datetime


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified_at: datetime


class UploadGone(Exception):
    """Storage no longer knows this multipart upload (completed, aborted or expired)."""


class PartTooLarge(Exception):
    pass


class BodyEndedEarly(Exception):
    """The part's body stopped before its Content-Length (a dropped connection)."""


def multipart_store():
    """The store for the configured default storage."""
    return S3Multipart() if uses_s3() else LocalMultipart()


class S3Multipart:
    def __init__(self):
        self.client = default_storage.connection.meta.client
        self.bucket = default_storage.bucket_name

    def start(self, key: str) -> str:
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
        )
        return answer["UploadId"]

    def part_url(self, *, session, number: int, seconds: int, request=None) -> str:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": session.storage_key,
                "UploadId": session.storage_upload_id,
                "PartNumber": number,
            },
            ExpiresIn=seconds,
            HttpMethod="PUT",
        )

    def received_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts, marker = [], 0
        while True:
            try:
                page = self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if _error_code(exc) == "NoSuchUpload":
                    raise UploadGone() from exc
                raise
            parts += [
                StoredPart(number=p["PartNumber"], size=p["Size"], etag=p["ETag"])
                for p in page.get("Parts", [])
            ]
            if not page.get("IsTruncated"):
                return parts
            marker = page["NextPartNumberMarker"]

    def complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
                },
            )
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                raise UploadGone() from exc
            raise

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _error_code(exc) not in ("NoSuchUpload", "NoSuchKey", "404"):
                raise

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        size = self.size(key)
        starts = range(0, size, STREAM_PIECE_BYTES)
        with ThreadPoolExecutor(STREAM_PIECES_IN_FLIGHT, thread_name_prefix="s3-read") as pool:
            pending: deque = deque()
            for start in starts:
                end = min(start + STREAM_PIECE_BYTES, size)
                pending.append(pool.submit(self._read_range, key, start, end))
                if len(pending) == STREAM_PIECES_IN_FLIGHT:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _read_range(self, key: str, start: int, end: int) -> bytes:
        answer = self.client.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        return answer["Body"].read()

    def open_ranged(self, key: str, size: int) -> "RangedReader":
        return RangedReader(lambda start, end: self._read_range(key, start, end), size)

    def rename(self, old: str, new: str) -> None:
        # Server-side copy (up to 5 GB in one call); only for PNG/JPEG, see sessions.
        self.client.copy_object(
            Bucket=self.bucket, Key=new, CopySource={"Bucket": self.bucket, "Key": old}
        )
        self.delete(old)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                yield PendingUpload(upload["Key"], upload["UploadId"], upload["Initiated"])

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"], item["LastModified"])


class LocalMultipart:
    """Filesystem mode: parts are files `uploads/<upload id>/<number>.<md5>.part`.

    A part is written to a temporary file and renamed into place only when its
    body arrived in full, so a dropped connection leaves no half part (as in S3).
    The etag is the part's MD5 in quotes, as S3 answers it.
    """

    def _path(self, name: str) -> Path:
        return Path(default_storage.path(name))

    def _parts_dir(self, upload_id: str) -> Path:
        return self._path(f"{LOCAL_PARTS_DIR}/{upload_id}")

    def start(self, key: str) -> str:
        upload_id = uuid.uuid4().hex
        self._parts_dir(upload_id).mkdir(parents=True)
        return upload_id

    def part_url(self, *, session, number: int, seconds: int, request=None) -> str:
        return part_url(session=session, number=number, seconds=seconds, request=request)

    def write_part(
        self, upload_id: str, number: int, stream, length: int, limit: int
    ) -> StoredPart:
        """Write one part from `stream` (exactly `length` bytes); replaces an earlier copy."""
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise UploadGone()
        temporary = directory / f".{number}.{uuid.uuid4().hex}.tmp"
        md5, received = hashlib.md5(usedforsecurity=False), 0
        try:
            with open(temporary, "wb") as handle:
                while received < length:
                    try:
                        piece = stream.read(min(STREAM_PIECE_BYTES, length - received))
                    except OSError as exc:  # the client went away mid-body
                        raise BodyEndedEarly() from exc
                    if not piece:
                        raise BodyEndedEarly()
                    received += len(piece)
                    if received > limit:
                        raise PartTooLarge()
                    md5.update(piece)
                    handle.write(piece)
            final = directory / f"{number}.{md5.hexdigest()}.part"
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        # A part sent again replaces the earlier copy: drop older files of this number.
        mine = final.stat().st_mtime_ns
        for other in directory.glob(f"{number}.*.part"):
            if other != final and other.stat().st_mtime_ns <= mine:
                other.unlink(missing_ok=True)
        return StoredPart(number=number, size=received, etag=f'"{md5.hexdigest()}"')

    def _part_files(self, upload_id: str) -> dict[int, Path]:
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise UploadGone()
        newest: dict[int, Path] = {}
        for path in directory.glob("*.part"):
            number = int(path.name.split(".", 1)[0])
            if number not in newest or path.stat().st_mtime_ns > newest[number].stat().st_mtime_ns:
                newest[number] = path
        return newest

    def received_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        return [
            StoredPart(number=n, size=p.stat().st_size, etag=f'"{p.name.split(".")[1]}"')
            for n, p in sorted(self._part_files(upload_id).items())
        ]

    def complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        files = self._part_files(upload_id)
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as out:
                for part in parts:
                    with open(files[part.number], "rb") as source:
                        shutil.copyfileobj(source, out, STREAM_PIECE_BYTES)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)

    def abort(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        with open(self._path(key), "rb") as handle:
            while piece := handle.read(STREAM_PIECE_BYTES):
                yield piece

    def open_ranged(self, key: str, size: int):
        return open(self._path(key), "rb")

    def rename(self, old: str, new: str) -> None:
        target = self._path(new)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(old), target)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        root = self._path(LOCAL_PARTS_DIR)
        if not root.is_dir():
            return
        for directory in root.iterdir():
            if directory.is_dir():
                started = datetime.fromtimestamp(directory.stat().st_mtime, tz=UTC)
                yield PendingUpload("", directory.name, started)

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        root = self._path(prefix)
        if not root.is_dir():
            return
        base = self._path("")
        for path in root.rglob("*"):
            if path.is_file():
                modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
                yield StoredObject(path.relative_to(base).as_posix(), modified)


class RangedReader:
    """A read-only, seekable file over ranged GETs, keeping one block in memory.

    Enough for what validation does (xrays.validation): read a header, seek to
    the end for a trailer, or (PNG) walk the chunks in order.
    """

    def __init__(self, fetch, size: int, block: int = RANGE_BLOCK_BYTES):
        self._fetch, self._size, self._block_size = fetch, size, block
        self._position = 0
        self._block_start, self._block = 0, b""
        self.requests = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._position
        out = []
        while size > 0 and self._position < self._size:
            offset = self._position - self._block_start
            if not 0 <= offset < len(self._block):
                self._load(self._position)
                offset = 0
            piece = self._block[offset : offset + size]
            out.append(piece)
            self._position += len(piece)
            size -= len(piece)
        return b"".join(out)

    def _load(self, start: int) -> None:
        end = min(self._size, start + self._block_size)
        self._block_start, self._block = start, self._fetch(start, end)
        self.requests += 1
        if len(self._block) != end - start:
            raise OSError("storage answered a short range")

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == os.SEEK_CUR:
            offset += self._position
        elif whence == os.SEEK_END:
            offset += self._size
        self._position = max(0, offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._block = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
