"""The events an X-ray record emits (DESIGN §8, §11): their kinds and what they carry."""

from enum import StrEnum

from django.core.files.storage import default_storage

from core.storage import uses_s3
from integrations import catalogue
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


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


_UUID = {"type": "string", "format": "uuid"}
_TEXT = {"type": "string"}

# The JSON Schema of xray_event_payload (the AsyncAPI document's XrayEventData).
XRAY_EVENT_DATA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "xray_id",
        "task_id",
        "paramedic_id",
        "consultation_id",
        "format",
        "content_type",
        "size_bytes",
        "sha256",
        "width",
        "height",
        "body_part",
        "captured_at",
        "dicom",
        "storage",
    ],
    "properties": {
        "xray_id": _UUID,
        "task_id": _UUID,
        "paramedic_id": _UUID,
        "consultation_id": _TEXT,
        "format": {"type": "string", "enum": XrayFormat.values},
        "content_type": _TEXT,
        "size_bytes": {"type": "integer", "minimum": 0},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "width": _nullable({"type": "integer", "minimum": 0}),
        "height": _nullable({"type": "integer", "minimum": 0}),
        "body_part": _TEXT,
        "captured_at": _nullable({"type": "string", "format": "date-time"}),
        "dicom": _nullable(
            {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "modality",
                    "study_instance_uid",
                    "series_instance_uid",
                    "sop_instance_uid",
                    "body_part_examined",
                ],
                "properties": {
                    "modality": _TEXT,
                    "study_instance_uid": _TEXT,
                    "series_instance_uid": _TEXT,
                    "sop_instance_uid": _TEXT,
                    "body_part_examined": _TEXT,
                },
            }
        ),
        "storage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["backend", "bucket", "key"],
            "description": "Where the image is stored (the bytes are never in the event).",
            "properties": {
                "backend": {"type": "string", "enum": ["s3", "filesystem"]},
                "bucket": _nullable(_TEXT),
                "key": _TEXT,
            },
        },
    },
}


def describe_events() -> None:
    """The catalogue entry of the bus for X-ray events (at start-up)."""
    catalogue.publishes(
        XrayEvent.UPLOADED,
        summary="A paramedic uploaded an X-ray image: its metadata and storage location.",
        subject="the X-ray record's id",
        data=XRAY_EVENT_DATA,
        data_name="XrayEventData",
    )


def record_xray_event(xray: XrayImage, kind: XrayEvent) -> None:
    """Write the outbox rows for this record; call inside its transaction."""
    record_event(
        kind=kind,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=xray.pk,
        payload=xray_event_payload(xray),
    )
