import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView, get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from api.schema import error_responses
from core.errors import NotFound
from core.permissions import IsParamedic, IsSupervisor, IsSupervisorOrParamedic
from core.roles import hospital_id_of, is_supervisor, paramedic_of
from tasks.selectors import tasks_visible_to

from .destinations import rank_destinations
from .fhir import handoff_bundle
from .handoffs import handoff_acknowledge, handoff_cancel, handoff_offload, handoff_send
from .models import Handoff, Hospital
from .permissions import (
    CanKeepHospitals,
    IsSupervisorOrCrew,
    IsSupervisorOrHospitalStaff,
    TakesPartInHandoffs,
)
from .selectors import handoffs_visible_to
from .serializers import (
    DestinationSerializer,
    HandoffSendSerializer,
    HandoffSerializer,
    HospitalSerializer,
    HospitalStaffCreatedSerializer,
    HospitalStaffSerializer,
    HospitalWriteSerializer,
)
from .services import hospital_create, hospital_staff_create, hospital_update


@extend_schema_view(
    list=extend_schema(operation_id="list_hospitals", summary="Hospitals (anyone signed in)"),
    retrieve=extend_schema(operation_id="get_hospital", summary="A hospital"),
)
class HospitalViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Hospitals and their status (design §21)."""

    permission_classes = [IsAuthenticated, CanKeepHospitals]
    serializer_class = HospitalSerializer
    queryset = Hospital.objects.all()
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "updated_at"]

    @extend_schema(
        operation_id="create_hospital",
        summary="Create a hospital (supervisors)",
        request=HospitalWriteSerializer,
        responses={201: HospitalSerializer, **error_responses(409)},
    )
    def create(self, request, *args, **kwargs):
        serializer = HospitalWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hospital = hospital_create(**serializer.validated_data)
        return Response(HospitalSerializer(hospital).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="replace_hospital",
        summary="Replace a hospital's details (supervisors)",
        request=HospitalWriteSerializer,
        responses={200: HospitalSerializer, **error_responses(409)},
    )
    def update(self, request, *args, **kwargs):
        hospital = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = HospitalWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        hospital = hospital_update(
            hospital=hospital, changes=serializer.validated_data, actor=request.user
        )
        return Response(HospitalSerializer(hospital).data)

    @extend_schema(
        operation_id="update_hospital",
        summary="Change a hospital (supervisors) or its status (its own staff)",
        description=(
            "A hospital's staff may send only `status`, `diversion_reason` and "
            "`ed_beds_available`, for its own hospital (403 otherwise). Opening a "
            "hospital clears its diversion reason."
        ),
        request=HospitalWriteSerializer,
        responses={200: HospitalSerializer, **error_responses(409)},
    )
    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    @extend_schema(
        operation_id="create_hospital_staff",
        summary="Create a login for a hospital's staff (supervisors)",
        description="The user joins group `hospitals`, tied to this hospital (design §21).",
        request=HospitalStaffSerializer,
        responses={201: HospitalStaffCreatedSerializer, **error_responses(409)},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsSupervisor])
    def staff(self, request, pk=None):
        hospital = self.get_object()
        serializer = HospitalStaffSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        staff = hospital_staff_create(hospital=hospital, **serializer.validated_data)
        return Response(
            {"username": staff.user.username, "hospital": str(hospital.pk)},
            status=status.HTTP_201_CREATED,
        )


class TaskDestinationsView(APIView):
    """GET /tasks/{id}/destinations: hospitals ranked for the task (design §21)."""

    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]

    @extend_schema(
        operation_id="list_task_destinations",
        summary="Hospitals ranked for a task (supervisors, its paramedic)",
        description=(
            "Every hospital, best first: those with the capability the call type needs, "
            "open before on diversion, then by travel time from the scene; each with "
            "its reasons. A plain list (not paginated)."
        ),
        responses={200: DestinationSerializer(many=True)},
    )
    def get(self, request, task_id):
        task = get_object_or_404(
            tasks_visible_to(request.user).select_related("call_type"), pk=task_id
        )
        return Response(DestinationSerializer(rank_destinations(task), many=True).data)


def _own_paramedic(view, request, **kwargs) -> str:
    """Idempotency-Keys of a report are the sending paramedic's."""
    return f"paramedic:{paramedic_of(request.user).pk}"


class TaskHandoffView(APIView):
    """POST /tasks/{id}/handoff: the crew's pre-arrival report (design §21)."""

    permission_classes = [IsAuthenticated, IsParamedic]

    @extend_schema(
        operation_id="send_handoff",
        summary="Send the pre-arrival report to a hospital (the task's paramedic)",
        description=(
            "For the paramedic's own task in progress. Vitals outside their ranges are "
            "400. A hospital on diversion is 409 `hospital_on_diversion` unless "
            "`confirm_diversion` is true. A report while another is active (not yet "
            "arrived) redirects: the earlier one becomes `redirected`. `eta` defaults "
            "to the travel time from the scene."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=HandoffSendSerializer,
        responses={201: HandoffSerializer, **error_responses(409, 422)},
    )
    @idempotent(owner=_own_paramedic)
    def post(self, request, task_id):
        serializer = HandoffSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        handoff = handoff_send(
            task_id=task_id,
            paramedic_id=paramedic_of(request.user).pk,
            hospital_id=data.pop("hospital"),
            eta=data.pop("eta", None),
            confirm_diversion=data.pop("confirm_diversion"),
            report={**data.pop("vitals", {}), **data},
        )
        return Response(HandoffSerializer(handoff).data, status=status.HTTP_201_CREATED)


class HospitalHandoffsView(ListAPIView):
    """GET /hospitals/{id}/handoffs: reports addressed to a hospital, newest first."""

    permission_classes = [IsAuthenticated, IsSupervisorOrHospitalStaff]
    serializer_class = HandoffSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return Handoff.objects.none()
        user, hospital_id = self.request.user, uuid.UUID(self.kwargs["hospital_id"])
        if not is_supervisor(user) and hospital_id_of(user) != hospital_id:
            raise NotFound("Hospital not found.")  # another hospital's: as if none
        get_object_or_404(Hospital, pk=hospital_id)
        return handoffs_visible_to(self.request.user).filter(hospital_id=hospital_id)

    @extend_schema(
        operation_id="list_hospital_handoffs",
        summary="Reports addressed to a hospital (its staff, supervisors)",
        description="Another hospital's list is 404 to a hospital's staff.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class HandoffViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A handoff, and the hospital's and the crew's moves on it (design §21)."""

    permission_classes = [IsAuthenticated, TakesPartInHandoffs]
    serializer_class = HandoffSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Handoff.objects.none()
        return handoffs_visible_to(self.request.user)

    @extend_schema(operation_id="get_handoff", summary="A handoff (its hospital, crew)")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        operation_id="get_handoff_fhir",
        summary="The report as a FHIR R4 Bundle (its hospital, crew)",
        description=(
            "A `collection` Bundle: Patient (sex only), an Observation of the estimated "
            "age, the emergency Encounter, an Observation per vital sign (LOINC), a "
            "Condition for the chief complaint, a Procedure per treatment. Served as "
            "`application/fhir+json`."
        ),
        responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None):
        return Response(handoff_bundle(self.get_object()), content_type="application/fhir+json")

    def _answer(self, handoff):
        return Response(HandoffSerializer(handoff).data)

    @extend_schema(
        operation_id="acknowledge_handoff",
        summary="The hospital has read the report (its staff, supervisors)",
        request=None,
        responses={200: HandoffSerializer, **error_responses(409)},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[IsAuthenticated, IsSupervisorOrHospitalStaff],
    )
    def acknowledge(self, request, pk=None):
        handoff = self.get_object()
        return self._answer(handoff_acknowledge(handoff_id=handoff.pk, actor=request.user))

    @extend_schema(
        operation_id="offload_handoff",
        summary="The patient is handed over: the task completes, the crew is free",
        description="After arrival (milestone `at_destination`); by the hospital or the crew.",
        request=None,
        responses={200: HandoffSerializer, **error_responses(409)},
    )
    @action(detail=True, methods=["post"])
    def offload(self, request, pk=None):
        handoff = self.get_object()
        return self._answer(handoff_offload(handoff_id=handoff.pk, actor=request.user))

    @extend_schema(
        operation_id="cancel_handoff",
        summary="Withdraw the report (the crew, supervisors)",
        request=None,
        responses={200: HandoffSerializer, **error_responses(409)},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsSupervisorOrCrew])
    def cancel(self, request, pk=None):
        handoff = self.get_object()
        return self._answer(handoff_cancel(handoff_id=handoff.pk))
