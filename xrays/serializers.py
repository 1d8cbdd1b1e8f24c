from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import StrictCharField, StrictIntegerField, StrictUUIDField

from .models import UploadState, XrayFormat, XrayImage
from .selectors import pacs_rendered_url


class DicomTagsSerializer(serializers.Serializer):
    modality = serializers.CharField(source="dicom_modality")
    study_instance_uid = serializers.CharField(source="dicom_study_uid")
    series_instance_uid = serializers.CharField(source="dicom_series_uid")
    sop_instance_uid = serializers.CharField(source="dicom_sop_uid")
    body_part_examined = serializers.CharField(source="dicom_body_part")


class PacsSerializer(serializers.Serializer):
    """Where doctors review the image: what the PACS stored (design §15)."""

    study_instance_uid = serializers.CharField(source="pacs_study_uid")
    series_instance_uid = serializers.CharField(source="pacs_series_uid")
    sop_instance_uid = serializers.CharField(source="pacs_sop_uid")
    retrieve_url = serializers.URLField(
        source="pacs_retrieve_url",
        read_only=True,
        help_text="WADO-RS: the instance as application/dicom.",
    )
    rendered_url = serializers.SerializerMethodField(
        help_text="WADO-RS rendered: the instance as an image (e.g. image/jpeg)."
    )
    stored_at = serializers.DateTimeField(source="pacs_stored_at")

    def get_rendered_url(self, obj: XrayImage) -> str:
        return pacs_rendered_url(obj)


class XrayImageSerializer(serializers.ModelSerializer):
    dicom = serializers.SerializerMethodField()

    class Meta:
        model = XrayImage
        fields = [
            "id",
            "paramedic",
            "task",
            "consultation_id",
            "format",
            "content_type",
            "size_bytes",
            "sha256",
            "width",
            "height",
            "body_part",
            "notes",
            "captured_at",
            "dicom",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DicomTagsSerializer(allow_null=True))
    def get_dicom(self, obj: XrayImage) -> dict | None:
        return DicomTagsSerializer(obj).data if obj.format == XrayFormat.DICOM else None


class XrayDetailSerializer(XrayImageSerializer):
    download_url = serializers.CharField(source="link.url")
    download_url_expires_at = serializers.DateTimeField(source="link.expires_at")
    pacs = serializers.SerializerMethodField()

    class Meta(XrayImageSerializer.Meta):
        fields = [
            *XrayImageSerializer.Meta.fields,
            "download_url",
            "download_url_expires_at",
            "pacs",
        ]
        read_only_fields = fields

    @extend_schema_field(
        PacsSerializer(
            allow_null=True,
            help_text=(
                "Doctors and supervisors: where the PACS holds the image, once it has "
                "stored it (XRAY_SERVICE_KIND=dicomweb); else null."
            ),
        )
    )
    def get_pacs(self, obj: XrayImage) -> dict | None:
        if not obj.pacs_sop_uid or not self.context.get("show_pacs"):
            return None
        return PacsSerializer(obj).data


class XrayUploadSerializer(serializers.Serializer):
    image = serializers.FileField(allow_empty_file=True, help_text="DICOM, PNG or JPEG.")
    task = StrictUUIDField(help_text="One of the paramedic's tasks.")
    consultation_id = StrictCharField(
        max_length=64, required=False, help_text="Defaults to the task's consultation."
    )
    body_part = StrictCharField(max_length=64, required=False, allow_blank=True)
    notes = StrictCharField(max_length=5000, required=False, allow_blank=True)
    captured_at = serializers.DateTimeField(required=False)


# --- Resumable uploads (design §13) ---------------------------------------------


class UploadSessionCreateSerializer(serializers.Serializer):
    task = StrictUUIDField(help_text="One of the paramedic's tasks.")
    size = StrictIntegerField(
        min_value=1, max_value=2**62, help_text="The file's size in bytes (at most the limit)."
    )
    sha256 = StrictCharField(
        min_length=64, max_length=64, help_text="The file's sha256, 64 hexadecimal digits."
    )
    consultation_id = StrictCharField(
        max_length=64, required=False, help_text="Defaults to the task's consultation."
    )
    body_part = StrictCharField(max_length=64, required=False, allow_blank=True)
    notes = StrictCharField(max_length=5000, required=False, allow_blank=True)
    captured_at = serializers.DateTimeField(required=False)

    def validate_sha256(self, value: str) -> str:
        if not all(c in "0123456789abcdefABCDEF" for c in value):
            raise serializers.ValidationError("Not a sha256 in hexadecimal.", code="invalid_sha256")
        return value.lower()


class UploadPartUrlSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="Part number, from 1.")
    size = serializers.IntegerField(help_text="The bytes this part must hold.")
    url = serializers.CharField(help_text="PUT the part's bytes here (no Authorization header).")


class ReceivedPartSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    size = serializers.IntegerField()
    etag = serializers.CharField(help_text="Storage's ETag for the part (empty once joined).")


class UploadFailureSerializer(serializers.Serializer):
    code = serializers.CharField(source="failure_code")
    detail = serializers.CharField(source="failure_detail")


class UploadSessionSerializer(serializers.Serializer):
    """A session as the device sees it; `parts` and `received_parts` are set by the view."""

    id = serializers.UUIDField()
    paramedic = serializers.UUIDField(source="paramedic_id")
    task = serializers.UUIDField(source="task_id")
    state = serializers.ChoiceField(choices=UploadState.choices)
    size = serializers.IntegerField(source="size_bytes")
    sha256 = serializers.CharField()
    part_size = serializers.IntegerField()
    part_count = serializers.IntegerField()
    parts = UploadPartUrlSerializer(
        many=True,
        help_text="Fresh URLs for the parts storage does not hold yet (empty unless uploading).",
    )
    received_parts = ReceivedPartSerializer(
        many=True, help_text="What storage really holds (GET; on create, none yet)."
    )
    xray = serializers.UUIDField(
        source="xray_id", allow_null=True, help_text="The record, once completed."
    )
    failure = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(UploadFailureSerializer(allow_null=True))
    def get_failure(self, obj) -> dict | None:
        return UploadFailureSerializer(obj).data if obj.failure_code else None


class CompletePartSerializer(serializers.Serializer):
    number = StrictIntegerField(min_value=1, max_value=10000)
    etag = StrictCharField(max_length=128)


class UploadSessionCompleteSerializer(serializers.Serializer):
    parts = CompletePartSerializer(
        many=True,
        required=False,
        max_length=10000,
        help_text="Optional: the parts as the device sent them; without it, what storage holds.",
    )

    def validate_parts(self, parts):
        numbers = [p["number"] for p in parts]
        if len(set(numbers)) != len(numbers):
            raise serializers.ValidationError("A part number is listed twice.", code="duplicate")
        return parts
