"""DICOMweb STOW-RS to a PACS (design §15): the X-ray Service when
XRAY_SERVICE_KIND=dicomweb.

The copy (integrations.dicom) goes as one `multipart/related; type="application/dicom"`
part, streamed from storage with a known Content-Length (some PACS refuse chunked
bodies), to the study's STOW URL `{XRAY_SERVICE_URL}/studies/{StudyInstanceUID}` with
the study the domain recorded: the PACS then also checks that the instance belongs
to it (PS3.18 10.5), and refuses (409) an object that is not what was recorded.

What the answer means (PS3.18 10.5.3, DICOM JSON):
- the instance in ReferencedSOPSequence (0008,1199): stored; its RetrieveURL
  (0008,1190) is kept;
- in FailedSOPSequence (0008,1198), or HTTP 409/4xx: refused for good, with the
  PACS's FailureReason (0008,1197) - except "out of resources" (A7xx), retried;
- 5xx, 429, timeouts, connection errors, storage errors: retried.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from django.conf import settings

from core.payloads import JsonRefused, load_json
from core.storage import STORAGE_ERRORS, storage_failure

from ..dicom import CopyRefused, CopyRequest, DicomCopy, build_copy
from ..objects import ObjectMissing
from .base import IntegrationError, PermanentIntegrationError, ServiceClient, _pool, url_for

# A STOW answer lists a few UIDs; a PACS answering more than this is not read.
MAX_RESPONSE_BYTES = 1024 * 1024
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
RETRIEVE_URL = "00081190"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
# PS3.4 Annex B.2.3 / PS3.18 Table 10.5.3-2 (the common ones).
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0117: "invalid object instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "referenced transfer syntax not supported",
}


@dataclass(frozen=True)
class StoredInstance:
    """What the PACS stored: the UIDs of the instance and where to retrieve it."""

    study_uid: str
    series_uid: str
    sop_uid: str
    retrieve_url: str


def _value(element: dict | None) -> list:
    if not isinstance(element, dict):
        return []
    value = element.get("Value")
    return value if isinstance(value, list) else []


def _describe_failure(code) -> str:
    if not isinstance(code, int):
        return "no reason given"
    name = FAILURE_REASONS.get(code) or ("out of resources" if code >> 8 == 0xA7 else "")
    return f"failure reason {code} (0x{code:04X}{', ' + name if name else ''})"


class DicomWebClient(ServiceClient):
    name = "pacs"
    url_setting = "XRAY_SERVICE_URL"

    def __init__(self, base_url: str | None = None, token: str | None = None):
        super().__init__(base_url, token)
        self.user = settings.XRAY_SERVICE_USER
        self.password = settings.XRAY_SERVICE_PASSWORD

    def _auth(self):
        """Basic auth with XRAY_SERVICE_USER, else INTEGRATION_TOKEN as a bearer token."""
        if self.user:
            return httpx.BasicAuth(self.user, self.password), {}
        if self.token:
            return None, {"Authorization": f"Bearer {self.token}"}
        return None, {}

    def store(self, request: CopyRequest, *, idempotency_key: str) -> StoredInstance:
        """STOW-RS the copy described by `request`; what the PACS stored, or an error."""
        try:
            copy = build_copy(request)
        except (CopyRefused, ObjectMissing) as exc:
            raise PermanentIntegrationError(f"{self.name}: {self._copy_error(exc)}") from exc
        except STORAGE_ERRORS as exc:
            raise IntegrationError(f"{self.name}: storage {storage_failure(exc)}") from exc
        if not copy.study_uid or not copy.sop_uid:
            raise PermanentIntegrationError(f"{self.name}: the copy has no Study or SOP UID")
        # The study the domain expects; the PACS checks the instance belongs to it.
        url = url_for(self.base_url, "studies", request.study_uid or copy.study_uid)
        boundary = secrets.token_hex(16)
        opening = (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n"
            f"Content-Length: {copy.length}\r\n\r\n"
        ).encode()
        closing = f"\r\n--{boundary}--\r\n".encode()
        auth, auth_headers = self._auth()
        headers = {
            **auth_headers,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Content-Length": str(len(opening) + copy.length + len(closing)),
            "Accept": "application/dicom+json, application/json",
            "Idempotency-Key": idempotency_key,
        }
        body = self._body(opening, copy, closing)
        timeout = httpx.Timeout(settings.XRAY_SERVICE_TIMEOUT_SECONDS, connect=3.0)
        try:
            with _pool(self.base_url).stream(
                "POST", url, content=body, headers=headers, timeout=timeout, auth=auth
            ) as response:
                status = response.status_code
                answer = self._read_answer(response)
        except httpx.HTTPError as exc:
            raise IntegrationError(f"{self.name}: {exc.__class__.__name__}") from exc
        except ObjectMissing as exc:
            raise PermanentIntegrationError(f"{self.name}: the stored object is missing") from exc
        except STORAGE_ERRORS as exc:
            raise IntegrationError(f"{self.name}: storage {storage_failure(exc)}") from exc
        return self._outcome(status, answer, copy)

    @staticmethod
    def _copy_error(exc: Exception) -> str:
        if isinstance(exc, ObjectMissing):
            return "the stored object is missing"
        return str(exc)

    @staticmethod
    def _body(opening: bytes, copy: DicomCopy, closing: bytes) -> Iterator[bytes]:
        yield opening
        sent = 0
        for chunk in copy.chunks():
            sent += len(chunk)
            yield chunk
        if sent != copy.length:
            # The object changed size under us: never send a body that lies.
            raise IntegrationError(f"pacs: the stored object changed while sending ({sent} bytes)")
        yield closing

    def _read_answer(self, response: httpx.Response) -> dict | None:
        data = b""
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_RESPONSE_BYTES:
                return None
        if not data:
            return None
        try:
            answer = load_json(data)
        except (JsonRefused, UnicodeDecodeError):
            return None
        return answer if isinstance(answer, dict) else None

    def _outcome(self, status: int, answer: dict | None, copy: DicomCopy) -> StoredInstance:
        if status == 429 or status >= 500:
            raise IntegrationError(f"{self.name}: HTTP {status}")
        failed = [
            item
            for item in _value((answer or {}).get(FAILED_SOP_SEQUENCE))
            if isinstance(item, dict)
        ]
        for item in failed:
            reason = next(iter(_value(item.get(FAILURE_REASON))), None)
            uid = next(iter(_value(item.get(REFERENCED_SOP_INSTANCE_UID))), copy.sop_uid)
            conflict = " (conflict)" if status == 409 else ""
            message = (
                f"{self.name}: HTTP {status}{conflict}, instance {uid} refused: "
                + _describe_failure(reason)
            )
            if isinstance(reason, int) and reason >> 8 == 0xA7:
                raise IntegrationError(message)  # out of resources: may pass later
            raise PermanentIntegrationError(message)
        if status >= 400:
            detail = " (conflict)" if status == 409 else ""
            raise PermanentIntegrationError(f"{self.name}: HTTP {status}{detail}")
        for item in _value((answer or {}).get(REFERENCED_SOP_SEQUENCE)):
            if not isinstance(item, dict):
                continue
            if next(iter(_value(item.get(REFERENCED_SOP_INSTANCE_UID))), None) != copy.sop_uid:
                continue
            retrieve = next(iter(_value(item.get(RETRIEVE_URL))), None)
            if (
                not isinstance(retrieve, str)
                or not retrieve.startswith(("http://", "https://"))
                or len(retrieve) > 1000  # what the record keeps; never a cut URL
            ):
                retrieve = url_for(
                    self.base_url,
                    "studies",
                    copy.study_uid,
                    "series",
                    copy.series_uid,
                    "instances",
                    copy.sop_uid,
                )
            return StoredInstance(copy.study_uid, copy.series_uid, copy.sop_uid, retrieve)
        # A success that does not name the instance proves nothing: try again later.
        raise IntegrationError(f"{self.name}: HTTP {status} without the instance in its answer")
