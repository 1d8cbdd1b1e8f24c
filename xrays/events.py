"""The events an X-ray record emits (DESIGN §8, §11): their kinds and what they carry."""

from enum import StrEnum

from django.core.files.storage import default_storage

from core.storage import uses_s3
from integrations.outbox import record_event

from .models import XrayFormat, XrayImage

AGGREGATE_TYPE = "xray"


class XrayEvent(StrEnum):
    UPLOADED = "xray.uploaded"


def xray_event_payload(xray: XrayImage) -> dict:
    """Metadata, storage location and consultation; never the image itself."""
    return {
        "xray_id": str(xray.pk),
        "task_id": str(xray.task_id),
        "paramedic_id": str(xray.paramedic_id),
        "consultation_id": xray.consultation_id,
        "format": xray.format,
        "content_type": xray.content_type,
        "size_bytes": xray.size_bytes,
        "sha256": xray.sha256,
        "width": xray.width,
        "height": xray.height,
        "body_part": xray.body_part,
        "captured_at": xray.captured_at.isoformat() if xray.captured_at else None,
        "dicom": {
            "modality": xray.dicom_modality,
            "study_instance_uid": xray.dicom_study_uid,
            "series_instance_uid": xray.dicom_series_uid,
            "sop_instance_uid": xray.dicom_sop_uid,
            "body_part_examined": xray.dicom_body_part,
        }
        if xray.format == XrayFormat.DICOM
        else None,
        "storage": {
            "backend": "s3" if uses_s3() else "filesystem",
            "bucket": getattr(default_storage, "bucket_name", None),
            "key": xray.file.name,
        },
    }


def record_xray_event(xray: XrayImage, kind: XrayEvent) -> None:
    """Write the outbox rows for this record; call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=xray.pk,
        payload=xray_event_payload(xray),
    )
