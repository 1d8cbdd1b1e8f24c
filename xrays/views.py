from django.core.files.storage import default_storage
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.idempotency import idempotency_key
from api.schema import error_responses
from api.throttling import ScopedClientThrottle
from core.errors import NotFound
from core.permissions import CanReadXrays, IsSupervisorOrParamedic
from core.roles import is_doctor, is_supervisor
from paramedics.selectors import paramedic_visible_to
from tasks.models import EmergencyTask

from .downloads import check_download_token, download_link
from .models import XrayImage
from .selectors import paramedics_with_visible_xrays, xrays_visible_to
from .serializers import XrayDetailSerializer, XrayImageSerializer, XrayUploadSerializer
from .services import STORAGE_ERRORS, StorageUnavailable, xray_upload
from .uploads import HashingTemporaryFileUploadHandler, check_declared_size


class XrayUploadView(APIView):
    """POST /paramedics/{id}/xray: multipart upload of one X-ray image."""

    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]
    parser_classes = [MultiPartParser]
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "uploads"  # per user: THROTTLE_UPLOAD_RATE

    @extend_schema(
        operation_id="upload_xray",
        summary="Upload an X-ray (supervisor or the paramedic itself)",
        description=(
            "Multipart. Accepted by content: DICOM, PNG, JPEG (else 415 "
            "`unsupported_media_type`); over XRAY_MAX_UPLOAD_BYTES 413 `file_too_large`; "
            "truncated or corrupt 400 `corrupt_image`; a task that is not this paramedic's "
            "404, as for an unknown one. 201 with the new record; 200 with "
            "the first record for a repeat (same Idempotency-Key, or the same image for "
            "the same task); a reused key with different content is 422. Storage down: 503 "
            "`storage_unavailable`, nothing recorded."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Retry key (1 to 128 printable ASCII characters).",
            )
        ],
        request={"multipart/form-data": XrayUploadSerializer},
        responses={201: XrayImageSerializer, 200: XrayImageSerializer, **error_responses(422)},
    )
    def post(self, request, paramedic_id):
        paramedic = paramedic_visible_to(request.user, paramedic_id)
        key = idempotency_key(request)
        # Before the body is read: refuse an oversized declaration, then stream to disk.
        check_declared_size(request.META.get("CONTENT_LENGTH"))
        request._request.upload_handlers = [HashingTemporaryFileUploadHandler(request._request)]
        serializer = XrayUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        task = EmergencyTask.objects.filter(pk=data.pop("task")).first()
        if task is None:
            raise NotFound("Task not found.")  # another paramedic's task: 404 in the service
        result = xray_upload(
            paramedic=paramedic,
            task=task,
            image=data.pop("image"),
            uploaded_by=request.user,
            idempotency_key=key,
            **data,
        )
        return Response(
            XrayImageSerializer(result.xray).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class ParamedicXrayListView(mixins.ListModelMixin, viewsets.GenericViewSet):
    """GET /paramedics/{id}/xrays: supervisor, the paramedic itself, doctors."""

    permission_classes = [IsAuthenticated, CanReadXrays]
    serializer_class = XrayImageSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return XrayImage.objects.none()
        paramedic = get_object_or_404(
            paramedics_with_visible_xrays(self.request.user), pk=self.kwargs["paramedic_id"]
        )
        return xrays_visible_to(self.request.user).filter(paramedic=paramedic)

    @extend_schema(operation_id="list_paramedic_xrays", summary="A paramedic's X-ray records")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class XrayViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """GET /xrays/{id}: the record with a short-lived download URL."""

    permission_classes = [IsAuthenticated, CanReadXrays]
    serializer_class = XrayDetailSerializer
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return xrays_visible_to(self.request.user)

    @extend_schema(
        operation_id="get_xray",
        summary="Retrieve an X-ray record and a short-lived download URL",
        description=(
            "Doctors and supervisors also see `pacs`: the UIDs the PACS stored and its "
            "WADO-RS retrieve and rendered-preview URLs (null until it has stored the image, "
            "and always for paramedics)."
        ),
    )
    def retrieve(self, request, *args, **kwargs):
        xray = self.get_object()
        xray.link = download_link(xray, request)
        context = {"show_pacs": is_doctor(request.user) or is_supervisor(request.user)}
        return Response(XrayDetailSerializer(xray, context=context).data)


class XrayFileView(APIView):
    """The filesystem mode's download URL: a signed, expiring token instead of a JWT."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="download_xray_file",
        summary="Download an X-ray file (embedded mode)",
        description=(
            "The `download_url` of GET /xrays/{id} in filesystem mode: the signed token "
            "authorises (no JWT). An unknown, expired or foreign token is 404."
        ),
        parameters=[OpenApiParameter("token", str, required=True)],
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "application/dicom"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, pk):
        if not check_download_token(pk, request.query_params.get("token", "")):
            raise NotFound("Unknown or expired download link.")
        xray = get_object_or_404(XrayImage, pk=pk)
        try:
            handle = default_storage.open(xray.file.name, "rb")
        except STORAGE_ERRORS as exc:
            raise StorageUnavailable() from exc
        return FileResponse(
            handle,
            as_attachment=True,
            filename=f"{xray.pk}.{xray.file.name.rsplit('.', 1)[-1]}",
            content_type=xray.content_type,
        )
