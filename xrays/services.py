"""Storing an X-ray: validate, store the file, then record it (design §7).

Order matters for "no record without its file and no file without its
record": the file is stored first, outside any transaction; the row is then
inserted in a short transaction; if the insert fails, the stored file is
deleted again. A duplicate (same Idempotency-Key, or the same image for the
same task) returns the first record, also when two retries race: the unique
constraints pick the winner and the loser removes its copy.
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import IdempotencyKeyReused, NotFound, ServiceUnavailable
from core.storage import STORAGE_ERRORS, storage_failure
from paramedics.models import Paramedic
from tasks.models import EmergencyTask

from .events import XrayEvent, record_xray_event
from .models import XrayImage
from .validation import inspect_image

logger = logging.getLogger(__name__)


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    default_detail = "X-ray storage is unavailable; retry with the same Idempotency-Key."


@dataclass
class UploadResult:
    xray: XrayImage
    created: bool


def xray_set_service_id(*, xray_id, service_id: str) -> None:
    """Remember the X-ray Service's id for the record."""
    XrayImage.objects.filter(pk=xray_id).update(xray_service_id=service_id[:128])


def xray_set_pacs(*, xray_id, study_uid: str, series_uid: str, sop_uid: str, retrieve_url: str):
    """Remember what the PACS stored for the record (design §15)."""
    XrayImage.objects.filter(pk=xray_id).update(
        pacs_study_uid=study_uid[:64],
        pacs_series_uid=series_uid[:64],
        pacs_sop_uid=sop_uid[:64],
        pacs_retrieve_url=retrieve_url[:1000],
        pacs_stored_at=timezone.now(),
    )


def storage_key(extension: str, now: datetime | None = None) -> str:
    """xrays/YYYY/MM/<uuid>.<ext>: chosen by the server, never by the client."""
    now = now or timezone.now()
    return f"xrays/{now:%Y}/{now:%m}/{uuid.uuid4()}.{extension}"


def same_upload_request(
    first,
    *,
    task_id,
    size: int,
    sha256: str,
    consultation_id: str | None,
    body_part: str,
    notes: str,
    captured_at: datetime | None,
):
    """`first` (a record or an upload session kept under an Idempotency-Key), if this
    repeat asks for exactly what its request did; else 422 `idempotency_key_reused`.

    Every field of the request counts, not only the bytes: a repeat that names
    another consultation, body part, note or capture time is another request, and
    answering it with the first would silently drop what it asked for. An omitted
    `consultation_id` means the task's, as when the first was stored.
    """
    if consultation_id is None:
        consultation_id = first.task.consultation_id
    asked = (str(task_id), size, sha256, consultation_id, body_part, notes, captured_at)
    kept = (
        str(first.task_id),
        first.size_bytes,
        first.sha256,
        first.consultation_id,
        first.body_part,
        first.notes,
        first.captured_at,
    )
    if asked != kept:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different upload.")
    return first


def _existing(*, paramedic: Paramedic, task: EmergencyTask, key: str | None, **request):
    """The record this upload repeats, if any; 422 for a key reused with another request."""
    if key:
        previous = (
            XrayImage.objects.select_related("task")
            .filter(paramedic=paramedic, idempotency_key=key)
            .first()
        )
        if previous is not None:
            return same_upload_request(previous, task_id=task.pk, **request)
    return xray_existing_for(task=task, sha256=request["sha256"])


def xray_record_insert(**fields) -> XrayImage:
    """Insert an X-ray record with its `xray.uploaded` event, in the caller's transaction.

    The one place a record is written, for both ways in: the multipart POST (§7)
    and the completion of an upload session (§13).
    """
    _take_turns_on_dicom_uids(fields)
    xray = XrayImage.objects.create(**fields)
    record_xray_event(xray, XrayEvent.UPLOADED)
    return xray


def _take_turns_on_dicom_uids(fields: dict) -> None:
    """Records of one DICOM study or instance are written one at a time.

    The event describes the PACS copy from the other records that hold the same UIDs
    (xrays.events.minted_copy_uids): two uploads of one file committing side by side
    would each see none and both keep the file's UIDs. On PostgreSQL a transaction-level
    advisory lock per UID (taken in one order, so no two inserts wait on each other)
    makes the later one wait for the earlier one's commit; SQLite has one writer at a
    time, and the insert, the first statement of the transaction, waits for it.
    """
    if connection.vendor != "postgresql":
        return
    uids = {fields.get("dicom_study_uid"), fields.get("dicom_sop_uid")} - {None, ""}
    keys = sorted(
        int.from_bytes(hashlib.sha256(f"xray-dicom-uid:{uid}".encode()).digest()[:8], "big")
        - 2**63  # pg_advisory_xact_lock takes a signed bigint
        for uid in uids
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def xray_existing_for(*, task: EmergencyTask, sha256: str) -> XrayImage | None:
    """The record of the same image for the same task, stored once (xray_once_per_task)."""
    return XrayImage.objects.filter(task=task, sha256=sha256).first()


def delete_stored_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except STORAGE_ERRORS:
        # Left for the operator: logged with its key so it can be removed by hand.
        logger.exception("could not remove orphaned X-ray file %s", name)


def xray_upload(
    *,
    paramedic: Paramedic,
    task: EmergencyTask,
    image: UploadedFile,
    uploaded_by,
    consultation_id: str | None = None,
    body_part: str = "",
    notes: str = "",
    captured_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> UploadResult:
    if task.paramedic_id != paramedic.pk:
        # Answered exactly like a task that does not exist: no probing for tasks.
        raise NotFound("Task not found.")
    sha256 = image.sha256
    request = {
        "size": image.size,
        "sha256": sha256,
        "consultation_id": consultation_id,
        "body_part": body_part,
        "notes": notes,
        "captured_at": captured_at,
    }
    previous = _existing(paramedic=paramedic, task=task, key=idempotency_key, **request)
    if previous is not None:
        return UploadResult(xray=previous, created=False)

    info = inspect_image(image, image.size)
    try:
        name = default_storage.save(storage_key(info.extension), image)
    except STORAGE_ERRORS as exc:
        logger.warning("X-ray storage failed: %s", storage_failure(exc))
        raise StorageUnavailable() from exc

    try:
        with transaction.atomic():
            xray = xray_record_insert(
                paramedic=paramedic,
                task=task,
                consultation_id=task.consultation_id
                if consultation_id is None
                else consultation_id,
                uploaded_by=uploaded_by,
                file=name,
                format=info.format,
                content_type=info.content_type,
                size_bytes=image.size,
                sha256=sha256,
                width=info.width,
                height=info.height,
                body_part=body_part,
                notes=notes,
                captured_at=captured_at,
                idempotency_key=idempotency_key,
                **info.dicom,
            )
    except IntegrityError:
        # A concurrent retry won the race: keep its record, drop our copy.
        delete_stored_quietly(name)
        winner = _existing(paramedic=paramedic, task=task, key=idempotency_key, **request)
        if winner is None:
            raise
        return UploadResult(xray=winner, created=False)
    except BaseException:
        delete_stored_quietly(name)
        raise
    return UploadResult(xray=xray, created=True)
