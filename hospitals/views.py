from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import error_responses
from core.permissions import IsSupervisor, IsSupervisorOrParamedic
from tasks.selectors import tasks_visible_to

from .destinations import rank_destinations
from .models import Hospital
from .permissions import CanKeepHospitals
from .serializers import (
    DestinationSerializer,
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
