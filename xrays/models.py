import uuid

from django.conf import settings
from django.db import models


class XrayFormat(models.TextChoices):
    DICOM = "dicom", "DICOM"
    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"


class XrayImage(models.Model):
    """An X-ray captured on site. The file lives in storage under `file`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    paramedic = models.ForeignKey(
        "paramedics.Paramedic", on_delete=models.PROTECT, related_name="xrays"
    )
    task = models.ForeignKey("tasks.EmergencyTask", on_delete=models.PROTECT, related_name="xrays")
    consultation_id = models.CharField(max_length=64, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The storage key, made by the server: xrays/YYYY/MM/<uuid>.<ext>.
    file = models.FileField(max_length=255, unique=True)
    format = models.CharField(max_length=8, choices=XrayFormat.choices)
    content_type = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    dicom_modality = models.CharField(max_length=16, blank=True)
    dicom_study_uid = models.CharField(max_length=128, blank=True)
    dicom_series_uid = models.CharField(max_length=128, blank=True)
    dicom_sop_uid = models.CharField(max_length=128, blank=True)
    dicom_body_part = models.CharField(max_length=64, blank=True)
    # NULL (not ""): uploads without a key must not collide in the unique constraint.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # The X-ray Service's id for this record, once it has been told (design §8).
    xray_service_id = models.CharField(max_length=128, blank=True)
    # What the PACS stored (design §15, XRAY_SERVICE_KIND=dicomweb): the UIDs of the copy
    # sent (for a PNG/JPEG, of its Secondary Capture) and its WADO-RS retrieve URL.
    pacs_study_uid = models.CharField(max_length=64, blank=True)
    pacs_series_uid = models.CharField(max_length=64, blank=True)
    pacs_sop_uid = models.CharField(max_length=64, blank=True)
    pacs_retrieve_url = models.URLField(max_length=1000, blank=True)
    pacs_stored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The same image for the same task is stored once, however often it is sent.
            models.UniqueConstraint(fields=["task", "sha256"], name="xray_once_per_task"),
            models.UniqueConstraint(
                fields=["paramedic", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="xray_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(format__in=XrayFormat.values), name="xray_format_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["paramedic", "created_at"], name="xray_paramedic_idx"),
            # Who else holds a study or instance (xrays.events.minted_copy_uids).
            models.Index(fields=["dicom_study_uid"], name="xray_dicom_study_idx"),
            models.Index(fields=["dicom_sop_uid"], name="xray_dicom_sop_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.format} {self.file.name}"


class UploadState(models.TextChoices):
    UPLOADING = "uploading", "Uploading"  # parts may be sent
    COMPLETING = "completing", "Completing"  # the service is verifying the bytes
    COMPLETED = "completed", "Completed"  # verified and recorded: see `xray`
    FAILED = "failed", "Failed"  # refused on completion: see failure_code
    ABORTED = "aborted", "Aborted"  # cancelled by the device or a supervisor
    EXPIRED = "expired", "Expired"  # not completed within XRAY_UPLOAD_SESSION_HOURS


OPEN_UPLOAD_STATES = (UploadState.UPLOADING, UploadState.COMPLETING)


class XrayUploadSession(models.Model):
    """A resumable upload of one X-ray straight to storage (design §13).

    The device PUTs the parts to presigned URLs (S3 multipart, or the service's
    own part URLs in filesystem mode); on completion the service checks the
    stored bytes itself (size, sha256, format) before it records the image.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    paramedic = models.ForeignKey(
        "paramedics.Paramedic", on_delete=models.PROTECT, related_name="upload_sessions"
    )
    task = models.ForeignKey(
        "tasks.EmergencyTask", on_delete=models.PROTECT, related_name="upload_sessions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        max_length=16, choices=UploadState.choices, default=UploadState.UPLOADING
    )
    # What the device declared; checked against the stored bytes on completion.
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    part_size = models.PositiveIntegerField()
    part_count = models.PositiveIntegerField()
    # Where the bytes go: a key chosen by the server, and the storage's upload id.
    storage_key = models.CharField(max_length=255, unique=True)
    storage_upload_id = models.CharField(max_length=255)
    # The record's fields, kept until completion (consultation already defaulted).
    consultation_id = models.CharField(max_length=64, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    # NULL (not ""): sessions without a key must not collide in the unique constraint.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    xray = models.ForeignKey(
        XrayImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Why completion refused the bytes (the answer a repeated complete gets again).
    failure_status = models.PositiveSmallIntegerField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_detail = models.CharField(max_length=255, blank=True)
    # When storage joined the parts into one object: from then on the bytes are
    # checked from that object (the multipart upload no longer exists).
    assembled_at = models.DateTimeField(null=True, blank=True)
    # While `completing`: until when the completing request holds the session; after
    # that (a crashed worker) another completion may take it over.
    lease_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["paramedic", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="xray_upload_session_key_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=UploadState.values),
                name="xray_upload_session_state_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(state=UploadState.COMPLETED) | models.Q(xray__isnull=False),
                name="xray_upload_session_completed_has_xray",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="xray_upload_open_idx")]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_UPLOAD_STATES
