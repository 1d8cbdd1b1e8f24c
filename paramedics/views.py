from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.conditional import (
    CONDITIONAL_PARAMETERS,
    NOT_MODIFIED,
    make_etag,
    not_modified,
    tagged,
    uuid_or_none,
)
from api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from api.schema import error_responses
from core.permissions import IsSupervisor, IsSupervisorOrParamedic
from core.roles import is_supervisor

from .filters import ParamedicFilter
from .models import Paramedic
from .permissions import check_self_update
from .selectors import paramedics_visible_to
from .serializers import (
    ParamedicSelfUpdateSerializer,
    ParamedicSerializer,
    ParamedicWriteSerializer,
)
from .services import paramedic_create, paramedic_update

UPDATE_DESCRIPTION = (
    "Supervisors may change every field. A paramedic may change only its own "
    "`phone`, `status` (available/off_duty) and `last_location`; other fields sent "
    "with their current value are accepted, changed ones answer 403 "
    "`field_not_editable`. `on_task` is set only by the task state machine."
)


CONFLICTS = (
    "409 `duplicate` (badge number or email taken; the field under `errors`), "
    "`invalid_transition` (leaving `on_task` by hand)."
)


def paramedic_etag(user, paramedic: Paramedic) -> str:
    """Every change to the profile (its login's fields, status, location, current
    task) saves `updated_at`; what a caller sees depends on its role."""
    return make_etag(
        "paramedic", paramedic.pk, paramedic.updated_at.isoformat(), is_supervisor(user)
    )


@extend_schema_view(
    list=extend_schema(
        operation_id="list_paramedics",
        summary="List paramedics (supervisors)",
    ),
    retrieve=extend_schema(
        operation_id="get_paramedic",
        summary="Retrieve a paramedic (supervisor or the paramedic itself)",
        parameters=CONDITIONAL_PARAMETERS,
        responses={200: ParamedicSerializer, **NOT_MODIFIED},
    ),
    create=extend_schema(
        operation_id="create_paramedic",
        summary="Create a paramedic and its login user (supervisors)",
        description=CONFLICTS,
        request=ParamedicWriteSerializer,
        responses={201: ParamedicSerializer, **error_responses(409)},
    ),
    update=extend_schema(
        operation_id="replace_paramedic",
        summary="Replace a paramedic's editable fields",
        description=f"{UPDATE_DESCRIPTION}\n\n{CONFLICTS}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ParamedicWriteSerializer,
        responses={200: ParamedicSerializer, **error_responses(409, 422)},
    ),
    partial_update=extend_schema(
        operation_id="update_paramedic",
        summary="Change some of a paramedic's fields",
        description=f"{UPDATE_DESCRIPTION}\n\n{CONFLICTS}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ParamedicWriteSerializer,
        responses={200: ParamedicSerializer, **error_responses(409, 422)},
    ),
)
class ParamedicViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ParamedicSerializer
    filterset_class = ParamedicFilter
    search_fields = ["first_name", "last_name", "badge_number"]
    ordering_fields = ["last_name", "badge_number", "created_at", "updated_at", "status"]
    lookup_value_regex = "[^/]+"

    def get_permissions(self):
        if self.action in ("list", "create"):
            return [IsAuthenticated(), IsSupervisor()]
        return [IsAuthenticated(), IsSupervisorOrParamedic()]

    def get_queryset(self):
        return paramedics_visible_to(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        # The 304 path: one narrow read through the same scoped queryset.
        current = request.headers.get("If-None-Match") and (
            self.get_queryset()
            .filter(pk=uuid_or_none(kwargs["pk"]))
            .only("pk", "updated_at")
            .first()
        )
        if current is not None:
            unchanged = not_modified(request, paramedic_etag(request.user, current))
            if unchanged is not None:
                return unchanged
        paramedic = self.get_object()
        data = self.get_serializer(paramedic).data
        return tagged(Response(data), paramedic_etag(request.user, paramedic))

    def create(self, request, *args, **kwargs):
        serializer = ParamedicWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        paramedic = paramedic_create(**serializer.validated_data)
        return Response(ParamedicSerializer(paramedic).data, status=status.HTTP_201_CREATED)

    @idempotent(owner=lambda view, request, **kwargs: f"paramedic:{view.get_object().pk}")
    def update(self, request, *args, **kwargs):
        paramedic = self.get_object()
        partial = kwargs.pop("partial", False)
        if is_supervisor(request.user):
            serializer = ParamedicWriteSerializer(data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
        else:
            serializer = ParamedicSelfUpdateSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            check_self_update(paramedic=paramedic, data=request.data)
        paramedic = paramedic_update(paramedic=paramedic, changes=serializer.validated_data)
        return Response(ParamedicSerializer(paramedic).data)
