from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import XrayFormat, XrayImage
from .selectors import pacs_rendered_url


class DicomTagsSerializer(serializers.Serializer):
    modality = serializers.CharField(source="dicom_modality")
    study_instance_uid = serializers.CharField(source="dicom_study_uid")
    series_instance_uid = serializers.CharField(source="dicom_series_uid")
    sop_instance_uid = serializers.CharField(source="dicom_sop_uid")
    body_part_examined = serializers.CharField(source="dicom_body_part")


class PacsSerializer(serializers.Serializer):
    """Where doctors review the image: what the PACS stored (DESIGN §15)."""

    study_instance_uid = serializers.CharField(source="pacs_study_uid")
    series_instance_uid = serializers.CharField(source="pacs_series_uid")
    sop_instance_uid = serializers.CharField(source="pacs_sop_uid")
    retrieve_url = serializers.URLField(
        source="pacs_retrieve_url", help_text="WADO-RS: the instance as application/dicom."
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
    task = serializers.UUIDField(help_text="One of the paramedic's tasks.")
    consultation_id = serializers.CharField(
        max_length=64, required=False, help_text="Defaults to the task's consultation."
    )
    body_part = serializers.CharField(max_length=64, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    captured_at = serializers.DateTimeField(required=False)
