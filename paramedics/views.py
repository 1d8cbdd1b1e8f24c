from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.conditional import (
    CONDITIONAL_PARAMETERS,
    NOT_MODIFIED,
    make_etag,
    retrieve_with_etag,
)
from api.filters import RejectUnknownQueryParams
from api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from api.schema import error_responses
from core.errors import ApplicationError
from core.permissions import IsParamedic, IsSupervisor, IsSupervisorOrParamedic
from core.roles import is_supervisor

from .filters import ParamedicFilter, ShiftFilter
from .models import Paramedic, Shift, Station
from .permissions import check_self_update
from .selectors import (
    current_and_upcoming_shifts,
    location_trail,
    own_paramedic,
    paramedics_visible_to,
    shifts_with_people,
)
from .serializers import (
    LocationBatchSerializer,
    LocationFixSerializer,
    LocationWindowSerializer,
    ParamedicSelfUpdateSerializer,
    ParamedicSerializer,
    ParamedicWriteSerializer,
    ShiftSerializer,
    ShiftWriteSerializer,
    StationSerializer,
    StationWriteSerializer,
    TrailReceiptSerializer,
)
from .services import (
    location_fixes_record,
    paramedic_create,
    paramedic_update,
    shift_create,
    shift_delete,
    shift_update,
    station_create,
    station_update,
)

UPDATE_DESCRIPTION = (
    "Supervisors may change every field. A paramedic may change only its own "
    "`phone`, `status` (available/off_duty) and `last_location`; other fields sent "
    "with their current value are accepted, changed ones answer 403 "
    "`field_not_editable`. `on_task` is set only by the task state machine."
)


CONFLICTS = (
    "409 `duplicate` (badge number or email taken; the field under `errors`), "
    "`invalid_transition` (leaving `on_task` by hand), `not_on_shift` (`available` "
    "outside a shift while ROSTER_REQUIRES_SHIFT is on). `base_station` is a station's "
    "code; an unknown one is 400 `unknown_station`."
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
    extra_query_params: tuple[str, ...] = ()  # per action (see api.filters)

    def get_permissions(self):
        if self.action in ("list", "create", "locations"):
            return [IsAuthenticated(), IsSupervisor()]
        if self.action == "record_locations":
            return [IsAuthenticated(), IsParamedic()]
        return [IsAuthenticated(), IsSupervisorOrParamedic()]

    def get_queryset(self):
        return paramedics_visible_to(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        return retrieve_with_etag(
            self, request, narrow=self.get_queryset(), fields=("updated_at",), etag=paramedic_etag
        )

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

    @extend_schema(
        operation_id="list_paramedic_shifts",
        summary="A paramedic's current and upcoming shifts (supervisor or the paramedic)",
        description="Shifts that have not ended yet, soonest first.",
        responses={200: ShiftSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="shifts",
        filter_backends=[RejectUnknownQueryParams],
        filterset_class=None,
    )
    def shifts(self, request, pk=None):
        paramedic = self.get_object()
        shifts = current_and_upcoming_shifts(paramedic).select_related("station")
        page = self.paginate_queryset(self.filter_queryset(shifts))
        return self.get_paginated_response(ShiftSerializer(page, many=True).data)

    @extend_schema(
        operation_id="list_paramedic_locations",
        summary="A paramedic's location trail (supervisors)",
        description=(
            "Its fixes in `[since, until)`, oldest first, by the device's time. The "
            "window spans at most LOCATION_WINDOW_MAX_HOURS (24); else 400 with "
            "`invalid_window` under `errors.until`. Fixes are kept "
            "LOCATION_RETENTION_DAYS (30)."
        ),
        parameters=[LocationWindowSerializer],
        responses={200: LocationFixSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="locations",
        filter_backends=[RejectUnknownQueryParams],
        filterset_class=None,
        extra_query_params=("since", "until"),
    )
    def locations(self, request, pk=None):
        paramedic = self.get_object()
        window = LocationWindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        fixes = location_trail(paramedic, **window.validated_data)
        page = self.paginate_queryset(fixes)
        return self.get_paginated_response(LocationFixSerializer(page, many=True).data)

    @extend_schema(
        operation_id="record_paramedic_locations",
        summary="Send a batch of location fixes (the paramedic itself)",
        description=(
            "A device sends the fixes it took (every few seconds, or a dead zone's "
            "backlog) in batches of up to LOCATION_BATCH_MAX (120). Every fix is kept "
            "(`GET .../locations`); the newest becomes `last_location` when it is newer "
            "than the stored one, so dispatch ranks by it. Safe to repeat: a fix already "
            "stored (same paramedic and `at`) is not stored twice, and a repeated batch "
            "answers the same. 400 `invalid_time` when a fix's `at` is out of bounds "
            "(each named under `errors.fixes` by position; nothing of the batch is kept)."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=LocationBatchSerializer,
        responses={200: TrailReceiptSerializer, **error_responses(422)},
    )
    @locations.mapping.post
    @idempotent(owner=lambda view, request, pk: f"paramedic:{own_paramedic(request.user, pk).pk}")
    def record_locations(self, request, pk=None):
        paramedic = own_paramedic(request.user, pk)
        batch = LocationBatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        receipt = location_fixes_record(paramedic=paramedic, fixes=batch.validated_data["fixes"])
        return Response(TrailReceiptSerializer(receipt).data)


# --- Rosters (design §14): supervisors only ----------------------------------------


@extend_schema_view(
    list=extend_schema(operation_id="list_stations", summary="List stations"),
    retrieve=extend_schema(operation_id="get_station", summary="Retrieve a station"),
    create=extend_schema(
        operation_id="create_station",
        summary="Create a station",
        description="409 `duplicate` when the code is taken (any case).",
        request=StationWriteSerializer,
        responses={201: StationSerializer, **error_responses(409)},
    ),
    update=extend_schema(
        operation_id="replace_station",
        summary="Replace a station",
        description="A new code is carried to the station's paramedics. 409 `duplicate` "
        "when the code is taken.",
        request=StationWriteSerializer,
        responses={200: StationSerializer, **error_responses(409)},
    ),
    partial_update=extend_schema(
        operation_id="update_station",
        summary="Change some of a station's fields",
        description="A new code is carried to the station's paramedics. 409 `duplicate` "
        "when the code is taken.",
        request=StationWriteSerializer,
        responses={200: StationSerializer, **error_responses(409)},
    ),
)
class StationViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsAuthenticated, IsSupervisor]
    serializer_class = StationSerializer
    queryset = Station.objects.all()
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at"]
    lookup_value_regex = "[^/]+"

    def create(self, request, *args, **kwargs):
        serializer = StationWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        station = station_create(**serializer.validated_data)
        return Response(StationSerializer(station).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        station = self.get_object()
        serializer = StationWriteSerializer(data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        station = station_update(station=station, changes=serializer.validated_data)
        return Response(StationSerializer(station).data)


def _station(station_id) -> Station:
    station = Station.objects.filter(pk=station_id).first()
    if station is None:
        raise ApplicationError(
            "No station has this id.",
            code="unknown_station",
            errors={"station": [{"code": "unknown_station", "message": "No station has this id."}]},
        )
    return station


SHIFT_CONFLICTS = (
    "409 `shift_overlap` when one of its paramedics is already on a shift that overlaps "
    "(the clashing shift is named in `detail` and under `errors.paramedics`). 400 for "
    "`ends_at` not after `starts_at` (`ends_before_start`) or more than 24 h later "
    "(`shift_too_long`), an unknown station (`unknown_station`) or paramedic "
    "(`unknown_paramedic`)."
)


@extend_schema_view(
    list=extend_schema(operation_id="list_shifts", summary="List shifts"),
    retrieve=extend_schema(operation_id="get_shift", summary="Retrieve a shift"),
    create=extend_schema(
        operation_id="create_shift",
        summary="Plan a shift",
        description=SHIFT_CONFLICTS,
        request=ShiftWriteSerializer,
        responses={201: ShiftSerializer, **error_responses(409)},
    ),
    update=extend_schema(
        operation_id="replace_shift",
        summary="Replace a shift",
        description=SHIFT_CONFLICTS,
        request=ShiftWriteSerializer,
        responses={200: ShiftSerializer, **error_responses(409)},
    ),
    partial_update=extend_schema(
        operation_id="update_shift",
        summary="Change some of a shift's fields",
        description=SHIFT_CONFLICTS + " `paramedics`, when sent, replaces the list.",
        request=ShiftWriteSerializer,
        responses={200: ShiftSerializer, **error_responses(409)},
    ),
    destroy=extend_schema(
        operation_id="delete_shift",
        summary="Remove a shift",
        description="Paramedics' statuses are left as they are.",
    ),
)
class ShiftViewSet(viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, IsSupervisor]
    serializer_class = ShiftSerializer
    filterset_class = ShiftFilter
    ordering_fields = ["starts_at", "ends_at", "created_at"]
    ordering = ["starts_at", "id"]
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return shifts_with_people(Shift.objects.select_related("station"))

    def _fresh(self, shift: Shift, code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=shift.pk)
        return Response(ShiftSerializer(fresh).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = ShiftWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["station"] = _station(data["station"])
        return self._fresh(shift_create(**data), status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        shift = self.get_object()
        serializer = ShiftWriteSerializer(data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "station" in changes:
            changes["station"] = _station(changes["station"])
        return self._fresh(shift_update(shift=shift, changes=changes))

    def destroy(self, request, *args, **kwargs):
        shift_delete(shift=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
