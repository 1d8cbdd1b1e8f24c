"""The events an X-ray record emits (design §8, §11): their kinds and what they carry."""

import uuid
from datetime import UTC
from enum import StrEnum

from django.core.files.storage import default_storage

from core.storage import uses_s3
from integrations import catalogue
from integrations.outbox import record_event

from .models import XrayFormat, XrayImage

AGGREGATE_TYPE = "xray"
# Secondary Capture UIDs are derived from the record (UUID-derived UIDs, PS3.5 B.2), so
# a redelivery sends the same instance again instead of a second one.
_UID_NAMESPACE = uuid.UUID("6f1f7a52-3f0c-4c53-9a44-1d0c2b9e1a16")
# Which patient-id domain PatientID belongs to (the Patient Service's ids).
ISSUER_OF_PATIENT_ID = "PATIENT-SERVICE"


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
        "pacs_copy": pacs_copy_description(xray),
    }


def _uid(name: str) -> str:
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def _text(value: str) -> str:
    """Free text (body part) as one DICOM value: no backslash, no control characters."""
    return "".join(c for c in value.replace("\\", "/") if c.isprintable())


def _name(part: str) -> str:
    """One component of a DICOM person name: `^` and `=` separate components there."""
    return _text(part).replace("^", " ").replace("=", " ")


def _dicom_datetime(moment) -> dict:
    moment = moment.astimezone(UTC)
    return {
        "date": moment.strftime("%Y%m%d"),
        "time": moment.strftime("%H%M%S.%f"),
        "datetime": moment.strftime("%Y%m%d%H%M%S.%f+0000"),
    }


def _consultation_study_uid(xray: XrayImage) -> str:
    """The study minted for a consultation's images of one patient."""
    if xray.consultation_id:
        return _uid(f"study/{xray.task.patient_id}/{xray.consultation_id}")
    return _uid(f"study/xray/{xray.pk}")


def minted_copy_uids(xray: XrayImage) -> dict[str, dict[str, str]]:
    """The UIDs a DICOM's PACS copy cannot keep, each with the UID minted for it.

    A PACS files an instance under its UIDs: two records' copies with the same ones
    both "succeed", and WADO-RS then cannot find the first. So a copy keeps the file's
    UIDs only where no other record holds them (the file's own, as read at upload):
    - the study, unless another record holds it for another patient (a study is one
      patient's): then study and series are minted from (UID, patient), so that
      patient's images of it stay one study;
    - the instance, unless another record holds it, or the study was minted: then it
      is minted from the record;
    - a UID the file lacks is minted (the study: the consultation's, as for a
      Secondary Capture).
    Minted UIDs are derived (2.25.<uuid5>), so a redelivery sends the same instance.
    Called when the record's event is written, after xray_record_insert made
    concurrent uploads of one study or instance take turns, so "another record"
    includes every earlier one.
    """
    others = XrayImage.objects.exclude(pk=xray.pk)
    patient = xray.task.patient_id
    study, series, instance = xray.dicom_study_uid, xray.dicom_series_uid, xray.dicom_sop_uid
    if not study:
        copy_study = _consultation_study_uid(xray)
    elif others.filter(dicom_study_uid=study).exclude(task__patient_id=patient).exists():
        copy_study = _uid(f"dicom-study/{study}/{patient}")  # another patient's study
    else:
        copy_study = study
    if copy_study == study:
        copy_series = series or _uid(f"series/{xray.pk}")
        keep_instance = bool(instance) and not others.filter(dicom_sop_uid=instance).exists()
    else:  # a study of this patient's own: its series and instance are new too
        copy_series = _uid(
            f"dicom-series/{study}/{series}/{patient}" if series else f"series/{xray.pk}"
        )
        keep_instance = False
    copy_instance = instance if keep_instance else _uid(f"instance/{xray.pk}")
    copies = {
        "StudyInstanceUID": (study, copy_study),
        "SeriesInstanceUID": (series, copy_series),
        "SOPInstanceUID": (instance, copy_instance),
    }
    return {
        keyword: {"original": original, "copy": copy}
        for keyword, (original, copy) in copies.items()
        if copy != original
    }


def pacs_copy_description(xray: XrayImage) -> dict:
    """What the PACS copy carries (design §15; docs/decisions.md lists the tags).

    Every copy: AccessionNumber = the consultation, PatientID = the task's patient
    (IssuerOfPatientID names whose ids those are). A DICOM keeps its UIDs unless
    another record's copy would share them (`minted_copy_uids`). A PNG/JPEG is
    wrapped as a Secondary Capture that also names the paramedic (OperatorsName) and
    the capture time, with UIDs derived from the record: the consultation's images
    of one patient share a study.
    """
    identifiers = {
        "AccessionNumber": xray.consultation_id,
        "PatientID": xray.task.patient_id,
        "IssuerOfPatientID": ISSUER_OF_PATIENT_ID,
    }
    description = {"key": xray.file.name, "format": xray.format, "identifiers": identifiers}
    if xray.format == XrayFormat.DICOM:
        minted = minted_copy_uids(xray)
        # The study the copy goes to: the PACS refuses an instance of another one.
        study = minted.get("StudyInstanceUID", {}).get("copy", xray.dicom_study_uid)
        return {**description, "study_instance_uid": study, "minted_uids": minted}
    when = _dicom_datetime(xray.captured_at or xray.created_at)
    paramedic = xray.paramedic
    description["study_instance_uid"] = _consultation_study_uid(xray)
    description["secondary_capture"] = {
        "StudyInstanceUID": description["study_instance_uid"],
        "SeriesInstanceUID": _uid(f"series/{xray.pk}"),
        "SOPInstanceUID": _uid(f"instance/{xray.pk}"),
        "StudyDate": when["date"],
        "StudyTime": when["time"],
        "ContentDate": when["date"],
        "ContentTime": when["time"],
        "AcquisitionDateTime": when["datetime"],
        "TimezoneOffsetFromUTC": "+0000",
        "OperatorsName": f"{_name(paramedic.last_name)}^{_name(paramedic.first_name)}",
        "SeriesDescription": _text(xray.body_part),
        "StudyDescription": "Paramedic X-ray",
    }
    return description


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
        "pacs_copy",
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
        "pacs_copy": {
            "type": "object",
            "additionalProperties": False,
            "required": ["key", "format", "study_instance_uid", "identifiers"],
            "description": (
                "What the copy sent to a PACS (XRAY_SERVICE_KIND=dicomweb) carries: DICOM "
                "keywords and values set on it; for a PNG/JPEG, the Secondary Capture's UIDs "
                "and tags."
            ),
            "properties": {
                "key": _TEXT,
                "format": {"type": "string", "enum": XrayFormat.values},
                "study_instance_uid": _TEXT,
                "identifiers": {
                    "type": "object",
                    "required": ["AccessionNumber", "PatientID", "IssuerOfPatientID"],
                    "additionalProperties": _TEXT,
                },
                "secondary_capture": {"type": "object", "additionalProperties": _TEXT},
                "minted_uids": {
                    "type": "object",
                    "description": (
                        "DICOM: the file's UIDs (keyword -> original) that the copy carries "
                        "minted instead (copy), because another record holds them or the "
                        "file has none; the stored original is unchanged."
                    ),
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["original", "copy"],
                        "properties": {"original": _TEXT, "copy": _TEXT},
                    },
                },
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
