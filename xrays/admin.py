from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError

from .downloads import download_link
from .models import XrayFormat, XrayImage, XrayUploadSession
from .selectors import pacs_rendered_url
from .sessions import upload_session_parts


def _task_link(obj: XrayImage | XrayUploadSession):
    """The record's task, linked to its page in the console."""
    url = reverse("admin:tasks_emergencytask_change", args=[obj.task_id])
    return format_html('<a href="{}">{}</a>', url, obj.task.request_id)


@admin.register(XrayImage)
class XrayImageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "format",
        "paramedic",
        "task_link",
        "body_part",
        "size_bytes",
        "in_pacs",
        "created_at",
    ]
    list_filter = ["format", "created_at"]
    list_select_related = ["paramedic", "task"]
    search_fields = ["id", "sha256", "consultation_id", "paramedic__badge_number"]
    date_hierarchy = "created_at"
    # Records are written only by the upload service, with their file.
    readonly_fields = [
        "preview",
        "id",
        "paramedic",
        "task_link",
        "consultation_id",
        "uploaded_by",
        "file",
        "format",
        "content_type",
        "size_bytes",
        "sha256",
        "width",
        "height",
        "body_part",
        "notes",
        "captured_at",
        "dicom_modality",
        "dicom_study_uid",
        "dicom_series_uid",
        "dicom_sop_uid",
        "dicom_body_part",
        "idempotency_key",
        "created_at",
        "pacs",
        "pacs_study_uid",
        "pacs_series_uid",
        "pacs_sop_uid",
        "pacs_stored_at",
    ]
    fields = readonly_fields

    @admin.display(description="Task")
    def task_link(self, obj):
        return _task_link(obj)

    @admin.display(description="In PACS", boolean=True)
    def in_pacs(self, obj: XrayImage) -> bool:
        return bool(obj.pacs_sop_uid)

    @admin.display(description="PACS (doctor review)")
    def pacs(self, obj: XrayImage):
        """Where the PACS holds the image (design §15): its own URLs, signed in there."""
        if not obj.pacs_retrieve_url:
            return "Not stored in a PACS (yet): see the outbox event for its state."
        return format_html(
            '<a href="{}" rel="noreferrer">Rendered preview</a> · '
            '<a href="{}" rel="noreferrer">WADO-RS instance (DICOM)</a>',
            pacs_rendered_url(obj),
            obj.pacs_retrieve_url,
        )

    @admin.display(description="Preview")
    def preview(self, obj: XrayImage):
        link = download_link(obj)
        if obj.format in (XrayFormat.PNG, XrayFormat.JPEG):
            return format_html(
                '<a href="{0}"><img src="{0}" alt="X-ray preview" '
                'style="max-width: 480px; max-height: 480px"></a>',
                link.url,
            )
        return format_html('<a href="{}">Download DICOM</a> (no in-browser preview)', link.url)


@admin.register(XrayUploadSession)
class XrayUploadSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Upload sessions for support (design §13): where a device's upload stands.

    "Parts received" asks storage (one listing per open session on the page), so
    it shows what storage really holds, as GET /xray-uploads/{id} does.
    """

    list_display = [
        "id",
        "state",
        "paramedic",
        "task_link",
        "size_bytes",
        "parts_received",
        "age",
        "expires_at",
        "failure_code",
    ]
    list_filter = ["state", "created_at"]
    list_select_related = ["paramedic", "task"]
    list_per_page = 50
    search_fields = ["id", "sha256", "paramedic__badge_number", "storage_key"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "state",
        "paramedic",
        "task_link",
        "created_by",
        "size_bytes",
        "sha256",
        "part_size",
        "part_count",
        "parts_received",
        "age",
        "storage_key",
        "storage_upload_id",
        "consultation_id",
        "body_part",
        "notes",
        "captured_at",
        "idempotency_key",
        "xray",
        "failure_status",
        "failure_code",
        "failure_detail",
        "assembled_at",
        "lease_until",
        "expires_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields

    @admin.display(description="Task")
    def task_link(self, obj):
        return _task_link(obj)

    @admin.display(description="Parts received")
    def parts_received(self, obj: XrayUploadSession) -> str:
        try:
            held = len(upload_session_parts(obj).received)
        except ApplicationError:
            return f"? of {obj.part_count} (storage unavailable)"
        return f"{held} of {obj.part_count}"

    @admin.display(description="Age")
    def age(self, obj: XrayUploadSession) -> str:
        return timesince(obj.created_at)
