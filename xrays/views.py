from django.core.files.storage import default_storage
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.idempotency import IDEMPOTENT_CREATE, idempotency_key
from api.schema import error_responses
from api.throttling import ScopedClientThrottle
from core.errors import Forbidden, NotFound
from core.permissions import CanReadXrays, IsSupervisorOrParamedic
from core.roles import is_doctor, is_supervisor
from core.storage import STORAGE_ERRORS, uses_s3
from paramedics.selectors import paramedic_visible_to
from tasks.models import EmergencyTask

from .downloads import check_download_token, download_link
from .models import XrayImage, XrayUploadSession
from .part_tokens import check_part_token
from .selectors import (
    paramedics_with_visible_xrays,
    upload_sessions_visible_to,
    xrays_visible_to,
)
from .serializers import (
    ReceivedPartSerializer,
    UploadSessionCompleteSerializer,
    UploadSessionCreateSerializer,
    UploadSessionSerializer,
    XrayDetailSerializer,
    XrayImageSerializer,
    XrayUploadSerializer,
)
from .services import StorageUnavailable, xray_upload
from .sessions import (
    PartView,
    upload_part_receive,
    upload_session_abort,
    upload_session_complete,
    upload_session_create,
    upload_session_part_urls,
    upload_session_parts,
)
from .uploads import HashingTemporaryFileUploadHandler, check_declared_size, largest_body


class XrayUploadView(APIView):
    """POST /paramedics/{id}/xray: multipart upload of one X-ray image."""

    max_body_bytes = staticmethod(largest_body)

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
            "truncated or corrupt 400 `corrupt_image` (also a DICOM UID, Rows or Columns "
            "its tag cannot hold, named in `detail`); a task that is not this paramedic's "
            "404, as for an unknown one. 201 with the new record; 200 with "
            "the first record for a repeat (same Idempotency-Key, or the same image for "
            "the same task); a reused key with different content or any other field is 422 "
            "`idempotency_key_reused`. Storage down: 503 "
            "`storage_unavailable`, nothing recorded."
        ),
        parameters=[IDEMPOTENT_CREATE],
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


# --- Resumable uploads (design §13) ---------------------------------------------

SESSION_DESCRIPTION = (
    "Parts go straight to storage: PUT each part's bytes to its `url` (no Authorization "
    "header; S3 answers an `ETag` header, as does the service in filesystem mode), in "
    "any order and in parallel. After a dropped connection, GET the session: "
    "`received_parts` is what storage holds and `parts` fresh URLs for what is missing. "
    "Then POST .../complete."
)


def _session_body(session, request, parts: PartView | None = None) -> dict:
    """The session with fresh URLs for the parts still missing.

    `parts` None (a new session): nothing is held yet, so storage is not asked.
    """
    if parts is None:
        parts = PartView(received=[], missing=list(range(1, session.part_count + 1)))
    session.parts = upload_session_part_urls(session, parts.missing, request)
    session.received_parts = parts.received
    return UploadSessionSerializer(session).data


class UploadSessionCreateView(APIView):
    """POST /paramedics/{id}/xray-uploads: open a resumable upload."""

    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="create_xray_upload",
        summary="Start a resumable X-ray upload (supervisor or the paramedic itself)",
        description=(
            "Declare the file (`size`, `sha256`) and the task; get presigned part URLs. "
            + SESSION_DESCRIPTION
            + " `size` over XRAY_MAX_UPLOAD_BYTES: 413 `file_too_large`, before anything "
            "is created. A task that is not this paramedic's: 404. With an Idempotency-Key "
            "a repeat answers the same session (200, fresh URLs); the key with any other "
            "field (task, size, sha256, consultation_id, body_part, notes, captured_at) is "
            "422 `idempotency_key_reused`. A paramedic holding XRAY_UPLOAD_MAX_OPEN_SESSIONS "
            "open sessions: 429 `too_many_upload_sessions` (complete or abort one). "
            "Storage down: 503."
        ),
        parameters=[IDEMPOTENT_CREATE],
        request=UploadSessionCreateSerializer,
        responses={
            201: UploadSessionSerializer,
            200: UploadSessionSerializer,
            **error_responses(422),
        },
    )
    def post(self, request, paramedic_id):
        paramedic = paramedic_visible_to(request.user, paramedic_id)
        key = idempotency_key(request)
        serializer = UploadSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        result = upload_session_create(
            paramedic=paramedic,
            task_id=data.pop("task"),
            size=data.pop("size"),
            sha256=data.pop("sha256"),
            created_by=request.user,
            idempotency_key=key,
            **data,
        )
        if result.created:
            body = _session_body(result.session, request)
        else:
            body = _session_body(result.session, request, upload_session_parts(result.session))
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class UploadSessionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """GET/DELETE /xray-uploads/{id}, POST /xray-uploads/{id}/complete."""

    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]
    serializer_class = UploadSessionSerializer
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return upload_sessions_visible_to(self.request.user)

    @extend_schema(
        operation_id="get_xray_upload",
        summary="An upload session: what storage holds, and URLs for the missing parts",
        description=SESSION_DESCRIPTION,
    )
    def retrieve(self, request, *args, **kwargs):
        session = self.get_object()
        return Response(_session_body(session, request, upload_session_parts(session)))

    @extend_schema(
        operation_id="abort_xray_upload",
        summary="Abort an upload session (storage drops its parts)",
        description=(
            "Answers the session, `aborted`; again: the same. A completed or refused "
            "session is 409 `upload_finished`; one being completed 409 `upload_completing` "
            "(until its completion lease runs out)."
        ),
        responses={200: UploadSessionSerializer, **error_responses(409)},
    )
    def destroy(self, request, *args, **kwargs):
        session = upload_session_abort(session=self.get_object())
        return Response(_session_body(session, request, PartView(received=[], missing=[])))

    @extend_schema(
        operation_id="complete_xray_upload",
        summary="Complete an upload: the service verifies the bytes and records the X-ray",
        description=(
            "Storage joins the parts; the service counts and hashes the stored object "
            "itself (422 `size_mismatch`, `checksum_mismatch`) and checks its content as "
            "POST /paramedics/{id}/xray does (415 `unsupported_media_type`, 400 "
            "`corrupt_image`, `empty_file`, `image_too_large`); a refused upload leaves no "
            "object and the session says why (a repeat answers the same refusal). 201 with "
            "the new record; 200 with the same record for a repeat (or the same image "
            "already recorded for the task). Parts missing or of the wrong size: 409 "
            "`upload_incomplete` (the session stays open); `parts` not what storage holds: "
            "409 `parts_mismatch`; aborted or expired: 409 `upload_closed`; another request "
            "completing it for over a minute: 409 `upload_completing`. Storage or database "
            "down: 503, the session stays `uploading` (complete again). Any other failure "
            "while recording: 500, the session is `failed` (`server_error`): start over."
        ),
        request=UploadSessionCompleteSerializer,
        responses={
            201: XrayImageSerializer,
            200: XrayImageSerializer,
            **error_responses(409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, *args, **kwargs):
        session = self.get_object()
        serializer = UploadSessionCompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = upload_session_complete(
            session=session, parts=serializer.validated_data.get("parts")
        )
        return Response(
            XrayImageSerializer(result.xray).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class XrayUploadPartView(APIView):
    """Filesystem mode's part URL: PUT one part's bytes, authorised by a signed token."""

    max_body_bytes = staticmethod(largest_body)

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = []  # the body is read raw, in pieces, never parsed
    # No JWT here: per client address. (S3's part URLs go to S3 itself; there a
    # session is bounded by its presigned URLs: its part count, size and lifetime.)
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "upload_parts"

    @extend_schema(
        operation_id="upload_xray_part",
        summary="Upload one part of a resumable upload (embedded mode)",
        description=(
            "The part `url` a session hands out in filesystem mode (with S3 the URL is "
            "S3's own, presigned). The signed token authorises exactly this part of this "
            "session until it expires (no JWT); otherwise 403. The body is the part's "
            "bytes, exactly its `size` (`Content-Length` required: over it 413 "
            "`part_too_large`, other sizes 400 `part_size_mismatch`). A part sent again "
            "replaces the earlier copy. Answers the part with its `ETag` (also as header). "
            "Throttled per client address (THROTTLE_UPLOAD_PART_RATE): 429 `throttled`."
        ),
        parameters=[OpenApiParameter("token", str, required=True)],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: ReceivedPartSerializer, **error_responses(403, 409)},
    )
    def put(self, request, pk, number):
        number = int(number)
        session = XrayUploadSession.objects.filter(pk=pk).first()
        token = request.query_params.get("token", "")
        if (
            uses_s3()
            or session is None
            or not check_part_token(
                token, session_id=pk, upload_id=session.storage_upload_id, number=number
            )
        ):
            raise Forbidden("Unknown, expired or foreign part URL.")
        part = upload_part_receive(
            session=session,
            number=number,
            stream=request._request,
            content_length=request.META.get("CONTENT_LENGTH"),
        )
        data = ReceivedPartSerializer(part).data
        return Response(data, headers={"ETag": part.etag})
