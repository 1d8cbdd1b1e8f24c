"""Resumable X-ray uploads straight to storage (design §13).

A device opens a session (`upload_session_create`), PUTs the parts to the URLs
it is given (S3 presigned, or the service's own in filesystem mode), asks which
parts storage holds after a dropped connection (`upload_session_parts`), and
completes (`upload_session_complete`). The bytes never pass through the app on
the way in; on completion the service checks them itself, never trusting the
device: the size of what storage joined, the sha256 computed by streaming the
object back (the per-part checksums S3 can verify do not give the whole file's
sha256, which the record keeps: docs/decisions.md), and the format exactly as
§7, from ranged reads. A refused upload leaves no object behind; the session
keeps the reason, and a repeated complete gets the same answer.

Concurrency: completing claims the session with a conditional UPDATE
(`uploading` -> `completing`, with a lease), so of two devices racing only one
verifies; the other waits for its outcome and answers the same record. However a
complete ends, it leaves the session where the device can act: `completed`,
`failed` with the reason (the bytes were refused, or recording them failed in a way
a retry cannot cure), or `uploading` again (parts missing, or a dependency outage:
the retry goes on from what storage already joined). Only a worker that dies
mid-way (or a database down when it would let go) leaves `completing`, and only
until the lease runs out: then a complete, an abort or the sweep takes it over.
Storage I/O happens outside database transactions, as everywhere else.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import (
    DATABASE_DOWN,
    ApplicationError,
    Conflict,
    NotFound,
)
from core.storage import STORAGE_ERRORS, storage_failure
from paramedics.models import Paramedic
from tasks.models import EmergencyTask

from .models import OPEN_UPLOAD_STATES, UploadState, XrayImage, XrayUploadSession
from .multipart import (
    BodyEndedEarly,
    LocalMultipart,
    PartTooLarge,
    StoredPart,
    UploadGone,
    multipart_store,
)
from .services import (
    StorageUnavailable,
    UploadResult,
    delete_stored_quietly,
    same_upload_request,
    storage_key,
    xray_existing_for,
    xray_record_insert,
)
from .uploads import FileTooLarge
from .validation import CorruptImage, inspect_image

logger = logging.getLogger(__name__)

# The key a session's object is stored under until its format is known. Large
# X-rays are DICOM, so the common case never moves; a PNG or JPEG is renamed
# (a server-side copy) to its own extension once validated.
PROVISIONAL_EXTENSION = "dcm"
# How long a racing complete waits for the one that is verifying.
COMPLETE_WAIT_SECONDS = 60
COMPLETE_POLL_SECONDS = 0.2


class ChecksumMismatch(ApplicationError):
    status_code = 422
    code = "checksum_mismatch"
    default_detail = "The stored bytes do not have the declared sha256."


class SizeMismatch(ApplicationError):
    status_code = 422
    code = "size_mismatch"
    default_detail = "The stored object does not have the declared size."


class UploadIncomplete(Conflict):
    code = "upload_incomplete"
    default_detail = "Storage does not hold every part yet; send the missing parts."


class UploadClosed(Conflict):
    code = "upload_closed"
    default_detail = "This upload session was aborted or has expired; start a new one."


class UploadFinished(Conflict):
    code = "upload_finished"
    default_detail = "This upload session is already completed or refused."


class UploadCompleting(Conflict):
    code = "upload_completing"
    default_detail = "This upload is being completed by another request; retry shortly."


class TooManyUploadSessions(ApplicationError):
    status_code = 429
    code = "too_many_upload_sessions"
    default_detail = "This paramedic has too many open upload sessions; complete or abort one."


class PartRefused(ApplicationError):
    code = "part_size_mismatch"
    default_detail = "The part must be exactly its `size` bytes."


@dataclass
class SessionResult:
    session: XrayUploadSession
    created: bool


@dataclass
class PartView:
    """What the device needs about the parts: held by storage, and still to send."""

    received: list[StoredPart]
    missing: list[int]


def expected_part_size(session: XrayUploadSession, number: int) -> int:
    if number < session.part_count:
        return session.part_size
    return session.size_bytes - session.part_size * (session.part_count - 1)


def upload_session_create(
    *,
    paramedic: Paramedic,
    task_id,
    size: int,
    sha256: str,
    created_by,
    consultation_id: str | None = None,
    body_part: str = "",
    notes: str = "",
    captured_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> SessionResult:
    """Open a session: a multipart upload in storage, and its row.

    The size limit is checked first, before storage or the database is asked.
    A repeat with the same Idempotency-Key answers the first session (any other
    field under that key: 422).
    """
    limit = settings.XRAY_MAX_UPLOAD_BYTES
    if size > limit:
        raise FileTooLarge(limit)
    if size < 1:
        raise CorruptImage("The file is empty.", code="empty_file")
    sha256 = sha256.lower()
    request = {
        "task_id": task_id,
        "size": size,
        "sha256": sha256,
        "consultation_id": consultation_id,
        "body_part": body_part,
        "notes": notes,
        "captured_at": captured_at,
    }
    if idempotency_key:
        previous = _session_for_key(paramedic, idempotency_key)
        if previous is not None:
            return SessionResult(same_upload_request(previous, **request), created=False)
    task = EmergencyTask.objects.filter(pk=task_id, paramedic=paramedic).first()
    if task is None:
        # A task that is not this paramedic's is answered like one that does not exist.
        raise NotFound("Task not found.")
    _check_open_sessions(paramedic)  # refused before storage is asked

    part_size = settings.XRAY_UPLOAD_PART_BYTES
    key = storage_key(PROVISIONAL_EXTENSION)
    store = multipart_store()
    try:
        upload_id = store.start(key)
    except STORAGE_ERRORS as exc:
        logger.warning("starting a multipart upload failed: %s", storage_failure(exc))
        raise StorageUnavailable() from exc
    try:
        with transaction.atomic():
            # Counted again under the paramedic's row lock: concurrent creates count
            # one after another, so the cap holds exactly (PostgreSQL).
            Paramedic.objects.select_for_update().only("pk").get(pk=paramedic.pk)
            _check_open_sessions(paramedic)
            session = XrayUploadSession.objects.create(
                paramedic=paramedic,
                task=task,
                created_by=created_by,
                size_bytes=size,
                sha256=sha256,
                part_size=part_size,
                part_count=math.ceil(size / part_size),
                storage_key=key,
                storage_upload_id=upload_id,
                consultation_id=task.consultation_id
                if consultation_id is None
                else consultation_id,
                body_part=body_part,
                notes=notes,
                captured_at=captured_at,
                idempotency_key=idempotency_key,
                expires_at=timezone.now() + timedelta(hours=settings.XRAY_UPLOAD_SESSION_HOURS),
            )
    except IntegrityError:
        # A concurrent repeat with the same key won: keep its session, drop our upload.
        _abort_quietly(store, key, upload_id)
        winner = _session_for_key(paramedic, idempotency_key) if idempotency_key else None
        if winner is None:
            raise
        return SessionResult(same_upload_request(winner, **request), created=False)
    except BaseException:
        _abort_quietly(store, key, upload_id)
        raise
    return SessionResult(session, created=True)


def _check_open_sessions(paramedic: Paramedic) -> None:
    """429 `too_many_upload_sessions` when the paramedic already holds
    XRAY_UPLOAD_MAX_OPEN_SESSIONS open sessions (each reserves storage for its size)."""
    open_sessions = XrayUploadSession.objects.filter(
        paramedic=paramedic, state__in=OPEN_UPLOAD_STATES, expires_at__gt=timezone.now()
    ).count()
    if open_sessions >= settings.XRAY_UPLOAD_MAX_OPEN_SESSIONS:
        raise TooManyUploadSessions(
            f"This paramedic has {open_sessions} open upload sessions, the most allowed; "
            "complete or abort one first."
        )


def _session_for_key(paramedic: Paramedic, key: str) -> XrayUploadSession | None:
    return (
        XrayUploadSession.objects.select_related("task")
        .filter(paramedic=paramedic, idempotency_key=key)
        .first()
    )


def upload_session_parts(session: XrayUploadSession) -> PartView:
    """The parts storage really holds, and the numbers still missing (or of the wrong size)."""
    if session.state == UploadState.COMPLETED or session.assembled_at is not None:
        held = [
            StoredPart(number=n, size=expected_part_size(session, n), etag="")
            for n in range(1, session.part_count + 1)
        ]
        return PartView(received=held, missing=[])
    if not session.is_open:
        return PartView(received=[], missing=[])
    try:
        stored = multipart_store().received_parts(session.storage_key, session.storage_upload_id)
    except UploadGone:
        return PartView(received=[], missing=[])
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable() from exc
    received = [p for p in stored if 1 <= p.number <= session.part_count]
    good = {p.number for p in received if p.size == expected_part_size(session, p.number)}
    return PartView(
        received=received,
        missing=[n for n in range(1, session.part_count + 1) if n not in good],
    )


def upload_session_part_urls(session: XrayUploadSession, numbers, request=None) -> list[dict]:
    """Fresh URLs for these parts, each valid for one part until it expires (or the session)."""
    if session.state != UploadState.UPLOADING:
        return []
    left = (session.expires_at - timezone.now()).total_seconds()
    seconds = int(min(settings.XRAY_UPLOAD_PART_URL_SECONDS, left))
    if seconds < 1:
        return []
    store = multipart_store()
    try:
        return [
            {
                "number": n,
                "size": expected_part_size(session, n),
                "url": store.part_url(session=session, number=n, seconds=seconds, request=request),
            }
            for n in numbers
        ]
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable() from exc


def upload_part_receive(
    *, session: XrayUploadSession, number: int, stream, content_length: str | None
) -> StoredPart:
    """Filesystem mode: store one part PUT to the service (the S3 URL's stand-in).

    Like S3, a part is there whole or not at all; sent again, it replaces the first.
    """
    if session.state != UploadState.UPLOADING or session.expires_at < timezone.now():
        raise UploadClosed("This upload session no longer takes parts.")
    expected = expected_part_size(session, number)
    try:
        length = int(content_length or "")
    except ValueError:
        raise PartRefused("Content-Length is required.", code="length_required") from None
    if length > expected:
        refusal = PartRefused(f"This part holds {expected} bytes.", code="part_too_large")
        refusal.status_code = 413
        raise refusal
    if length != expected:
        raise PartRefused(f"This part holds exactly {expected} bytes.")
    try:
        return LocalMultipart().write_part(
            session.storage_upload_id, number, stream, length, expected
        )
    except UploadGone:
        raise UploadClosed("This upload session no longer takes parts.") from None
    except BodyEndedEarly:
        raise PartRefused("The body ended before Content-Length.", code="incomplete_body") from None
    except PartTooLarge:
        raise PartRefused("The part is larger than declared.", code="part_too_large") from None
    except OSError as exc:
        raise StorageUnavailable() from exc


def upload_session_abort(*, session: XrayUploadSession) -> XrayUploadSession:
    """Abort: storage drops the parts (or the object they were joined into); the session
    ends `aborted`. Repeats change nothing. A completion whose lease ran out (its worker
    died) no longer holds the session."""
    if session.state == UploadState.ABORTED:
        return session
    now = timezone.now()
    abortable = Q(state=UploadState.UPLOADING) | Q(
        state=UploadState.COMPLETING, lease_until__lt=now
    )
    claimed = XrayUploadSession.objects.filter(abortable, pk=session.pk).update(
        state=UploadState.ABORTED, lease_until=None, updated_at=now
    )
    session.refresh_from_db()
    if not claimed:
        if session.state == UploadState.ABORTED:
            return session
        if session.state == UploadState.COMPLETING:
            raise UploadCompleting()
        if session.state == UploadState.EXPIRED:
            raise UploadClosed()
        raise UploadFinished()
    store = multipart_store()
    if session.assembled_at is None:
        _abort_quietly(store, session.storage_key, session.storage_upload_id)
    else:
        delete_stored_quietly(session.storage_key)
    return session


def upload_session_complete(
    *, session: XrayUploadSession, parts: list[dict] | None = None
) -> UploadResult:
    """Join, verify and record the upload; see the module docstring.

    `parts` ([{number, etag}]), when given, must be what storage holds.
    Returns the record (created False for a repeat, or the same image already
    recorded for the task).
    """
    deadline = time.monotonic() + COMPLETE_WAIT_SECONDS
    while True:
        session.refresh_from_db()
        if session.state == UploadState.COMPLETED:
            return UploadResult(xray=session.xray, created=False)
        if session.state == UploadState.FAILED:
            raise _stored_refusal(session)
        if session.state in (UploadState.ABORTED, UploadState.EXPIRED):
            raise UploadClosed()
        if _claim(session):
            break
        if time.monotonic() > deadline:
            raise UploadCompleting()
        time.sleep(COMPLETE_POLL_SECONDS)  # another request is verifying: wait for it

    # Every way out of here leaves the session completed, failed or uploading: a
    # session left `completing` by a request that has ended could be neither retried
    # nor aborted until its lease ran out.
    store = multipart_store()
    try:
        if session.assembled_at is None:
            _assemble(store, session, parts)
        return _verify_and_record(store, session)
    except STORAGE_ERRORS as exc:
        _release(session)
        logger.warning("completing upload %s failed: %s", session.pk, storage_failure(exc))
        raise StorageUnavailable() from exc
    except DATABASE_DOWN:
        _release(session)  # the retry records it (if this too fails, the lease runs out)
        raise
    except ApplicationError:
        if session.state != UploadState.FAILED:
            _release(session)  # incomplete or mismatched parts: the device sends them
        raise
    except Exception as exc:
        # Neither the device's doing nor an outage: a value the database refused, or
        # a bug. A retry would fail the same way, so the session fails with the reason.
        _fail(store, session, exc)
        raise
    except BaseException:
        _release(session)  # the process is stopping: a retry completes it
        raise


def _claim(session: XrayUploadSession) -> bool:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.XRAY_UPLOAD_COMPLETE_LEASE_SECONDS)
    claimable = Q(state=UploadState.UPLOADING) | Q(
        state=UploadState.COMPLETING, lease_until__lt=now
    )
    claimed = (
        XrayUploadSession.objects.filter(claimable, pk=session.pk)
        .exclude(expires_at__lt=now, assembled_at__isnull=True)
        .update(state=UploadState.COMPLETING, lease_until=lease, updated_at=now)
    )
    if claimed:
        session.refresh_from_db()
        return True
    session.refresh_from_db()
    if session.state == UploadState.UPLOADING and session.expires_at < now:
        raise UploadClosed("This upload session has expired; start a new one.")
    return False


def _release(session: XrayUploadSession) -> None:
    """Give the session back (`uploading`) after a failure that is not the upload's fault.

    Once storage has joined the parts (`assembled_at`) the retry checks that object,
    and an abort or the sweep removes it.
    """
    try:
        XrayUploadSession.objects.filter(pk=session.pk, state=UploadState.COMPLETING).update(
            state=UploadState.UPLOADING, lease_until=None, updated_at=timezone.now()
        )
    except DATABASE_DOWN:
        logger.warning("upload %s stays completing until its lease runs out", session.pk)
        return
    session.state = UploadState.UPLOADING


def _fail(store, session: XrayUploadSession, exc: Exception) -> None:
    """Recording failed for a reason a retry cannot cure: the session fails with it.

    The device reads why (GET), a repeated complete answers the same, and the session
    holds nothing any more: its object is removed and it counts as open no longer.
    """
    logger.warning("upload %s failed while recording: %s", session.pk, exc.__class__.__name__)
    if session.assembled_at is None:
        _abort_quietly(store, session.storage_key, session.storage_upload_id)
    failure = ApplicationError(
        f"The upload could not be recorded ({exc.__class__.__name__}); start a new upload.",
        code="server_error",
    )
    failure.status_code = 500
    try:
        _refuse(store, session, failure)
    except DATABASE_DOWN:
        logger.warning("upload %s stays completing until its lease runs out", session.pk)


def _assemble(store, session: XrayUploadSession, parts: list[dict] | None) -> None:
    """Check that storage holds every part at its size, then have storage join them."""
    try:
        stored = {
            p.number: p
            for p in store.received_parts(session.storage_key, session.storage_upload_id)
        }
    except UploadGone as exc:
        raise UploadClosed("Storage no longer holds this upload; start a new one.") from exc
    missing = [
        n
        for n in range(1, session.part_count + 1)
        if n not in stored or stored[n].size != expected_part_size(session, n)
    ]
    if missing:
        raise UploadIncomplete(errors={"parts": [{"code": "missing", "message": str(missing)}]})
    if parts is not None:
        claimed = {p["number"]: _unquoted(p["etag"]) for p in parts}
        held = {n: _unquoted(stored[n].etag) for n in range(1, session.part_count + 1)}
        if claimed != held:
            raise Conflict(
                "The parts listed are not the parts storage holds; GET the session and "
                "send the missing parts, or complete without a list.",
                code="parts_mismatch",
            )
    ordered = [stored[n] for n in range(1, session.part_count + 1)]
    try:
        store.complete(session.storage_key, session.storage_upload_id, ordered)
    except UploadGone as exc:
        raise UploadClosed("Storage no longer holds this upload; start a new one.") from exc
    now = timezone.now()
    XrayUploadSession.objects.filter(pk=session.pk).update(assembled_at=now, updated_at=now)
    session.assembled_at = now


def _unquoted(etag: str) -> str:
    return str(etag).strip().strip('"')


def _verify_and_record(store, session: XrayUploadSession) -> UploadResult:
    key = session.storage_key
    try:
        digest, counted = hashlib.sha256(), 0
        for piece in store.iter_bytes(key):
            digest.update(piece)
            counted += len(piece)
        if counted != session.size_bytes:
            raise SizeMismatch(
                f"Storage holds {counted} bytes; the session declared {session.size_bytes}."
            )
        if digest.hexdigest() != session.sha256:
            raise ChecksumMismatch()
        with store.open_ranged(key, counted) as stream:
            info = inspect_image(stream, counted)
    except ApplicationError as refusal:
        _refuse(store, session, refusal)
        raise

    final = key.rsplit(".", 1)[0] + "." + info.extension
    if final != key:  # (a retry finds it renamed already)
        store.rename(key, final)
        # The session names its object wherever it is: a retry after an outage
        # checks it there, and an abort or the sweep removes it there.
        XrayUploadSession.objects.filter(pk=session.pk).update(
            storage_key=final, updated_at=timezone.now()
        )
        session.storage_key = key = final
    fields = {
        "paramedic_id": session.paramedic_id,
        "task_id": session.task_id,
        "consultation_id": session.consultation_id,
        "uploaded_by_id": session.created_by_id,
        "file": key,
        "format": info.format,
        "content_type": info.content_type,
        "size_bytes": counted,
        "sha256": session.sha256,
        "width": info.width,
        "height": info.height,
        "body_part": session.body_part,
        "notes": session.notes,
        "captured_at": session.captured_at,
        **info.dicom,
    }
    try:
        with transaction.atomic():
            xray = xray_record_insert(**fields)
            _finish(session, xray)
    except IntegrityError:
        existing = xray_existing_for(task=session.task, sha256=session.sha256)
        if existing is None:
            raise  # not the dedupe below: upload_session_complete fails the session
        # The same image is already recorded for this task (§7 dedupe): that record
        # is the answer, and this copy goes.
        delete_stored_quietly(key)
        with transaction.atomic():
            _finish(session, existing)
        return UploadResult(xray=existing, created=False)
    return UploadResult(xray=xray, created=True)


def _finish(session: XrayUploadSession, xray: XrayImage) -> None:
    now = timezone.now()
    XrayUploadSession.objects.filter(pk=session.pk).update(
        state=UploadState.COMPLETED, xray=xray, lease_until=None, updated_at=now
    )
    session.state, session.xray = UploadState.COMPLETED, xray


def _refuse(store, session: XrayUploadSession, refusal: ApplicationError) -> None:
    """The bytes are not acceptable: remove the object, remember why."""
    try:
        store.delete(session.storage_key)
    except STORAGE_ERRORS:
        # The orphan sweep removes it: it has no record and no open session.
        logger.exception("could not remove refused upload %s", session.storage_key)
    XrayUploadSession.objects.filter(pk=session.pk).update(
        state=UploadState.FAILED,
        failure_status=refusal.status_code,
        failure_code=refusal.code,
        failure_detail=str(refusal.detail)[:255],
        lease_until=None,
        updated_at=timezone.now(),
    )
    session.state = UploadState.FAILED


def _stored_refusal(session: XrayUploadSession) -> ApplicationError:
    refusal = ApplicationError(session.failure_detail, code=session.failure_code)
    refusal.status_code = session.failure_status or 422
    return refusal


def _abort_quietly(store, key: str, upload_id: str) -> None:
    try:
        store.abort(key, upload_id)
    except STORAGE_ERRORS:
        logger.warning("could not abort multipart upload of %s; the sweep will", key)


# --- housekeeping (beat: xrays.sweep_uploads) -------------------------------------


@dataclass
class SweepResult:
    expired: int = 0
    aborted_uploads: int = 0
    removed_objects: int = 0


def upload_sessions_sweep(*, now: datetime | None = None) -> SweepResult:
    """Expire stale sessions, then remove what storage holds that nobody owns.

    1. Open sessions past `expires_at` (and not held by a live completion) become
       `expired`; their multipart upload is aborted (or their joined object removed).
    2. Multipart uploads that belong to no open session (a crash between starting
       one and inserting its session) are aborted.
    3. Objects under xrays/ that no record and no open session names are removed:
       a crash between storing and inserting, or a refusal whose delete failed.

    Steps 2 and 3 leave alone anything younger than XRAY_ORPHAN_GRACE_MINUTES, so
    an upload between its storage call and its insert is never taken for an orphan.
    """
    now = now or timezone.now()
    result = SweepResult()
    store = multipart_store()
    stale = XrayUploadSession.objects.filter(expires_at__lt=now).filter(
        Q(state=UploadState.UPLOADING) | Q(state=UploadState.COMPLETING, lease_until__lt=now)
    )
    for session in stale.iterator():
        claimed = XrayUploadSession.objects.filter(
            pk=session.pk, state=session.state, updated_at=session.updated_at
        ).update(state=UploadState.EXPIRED, lease_until=None, updated_at=timezone.now())
        if not claimed:
            continue  # it moved on meanwhile (completed, aborted)
        result.expired += 1
        try:
            if session.assembled_at:
                store.delete(session.storage_key)
            else:
                store.abort(session.storage_key, session.storage_upload_id)
        except STORAGE_ERRORS:
            logger.warning("could not clean up expired upload %s; next sweep", session.pk)

    cutoff = now - timedelta(minutes=settings.XRAY_ORPHAN_GRACE_MINUTES)
    open_sessions = XrayUploadSession.objects.filter(state__in=OPEN_UPLOAD_STATES)
    try:
        live_uploads = set(open_sessions.values_list("storage_upload_id", flat=True))
        for upload in store.pending_uploads("xrays/"):
            if upload.started_at < cutoff and upload.upload_id not in live_uploads:
                store.abort(upload.key, upload.upload_id)
                result.aborted_uploads += 1
        for batch in _batches(o for o in store.objects("xrays/") if o.modified_at < cutoff):
            keys = [o.key for o in batch]
            owned = set(XrayImage.objects.filter(file__in=keys).values_list("file", flat=True))
            owned |= set(
                open_sessions.filter(storage_key__in=keys).values_list("storage_key", flat=True)
            )
            for key in keys:
                if key not in owned:
                    store.delete(key)
                    result.removed_objects += 1
                    logger.info("removed orphaned X-ray object %s", key)
    except STORAGE_ERRORS as exc:
        logger.warning("orphan sweep stopped: storage %s", storage_failure(exc))
    return result


def _batches(items, size: int = 500):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
