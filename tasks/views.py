from django.db.models import Count, Max
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.conditional import (
    CONDITIONAL_PARAMETERS,
    NOT_MODIFIED,
    make_etag,
    not_modified,
    retrieve_with_etag,
    tagged,
)
from api.filters import RejectUnknownQueryParams
from api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from api.schema import error_responses
from core.permissions import IsSupervisor, IsSupervisorOrParamedic
from paramedics.selectors import paramedic_visible_to

from .dispatch import rank_candidates
from .filters import ParamedicTaskFilter, TaskFilter
from .models import EmergencyTask
from .permissions import CanReadTask, CanSubmitTasks
from .selectors import (
    load_history,
    may_see_patient_details,
    tasks_removed_from,
    tasks_visible_to,
    with_history,
)
from .serializers import (
    CandidateSerializer,
    CandidatesQuerySerializer,
    ParamedicTaskPageSerializer,
    TaskAssignSerializer,
    TaskCancelSerializer,
    TaskCreateSerializer,
    TaskDetailSerializer,
    TaskMilestoneSerializer,
    TaskSerializer,
    TaskStatusUpdateSerializer,
)
from .services import (
    task_assign,
    task_cancel,
    task_change_status,
    task_create,
    task_record_milestone,
)


def task_etag(user, task: EmergencyTask) -> str:
    """A task as this caller sees it. Every change saves `updated_at` (its history
    rows and patient details included); patient details depend on who asks."""
    full = may_see_patient_details(user, task)
    return make_etag("task", task.pk, task.updated_at.isoformat(), full)


def _detail(request, task: EmergencyTask, status_code=status.HTTP_200_OK) -> Response:
    """The task as the action left it, with its history, as every state-changing
    action returns it (the service's own object: only the history is read)."""
    fresh = load_history(task)
    return Response(
        TaskDetailSerializer(fresh, context={"request": request}).data, status=status_code
    )


@extend_schema_view(
    list=extend_schema(
        operation_id="list_tasks", summary="List tasks (supervisors: all; services: their own)"
    ),
    retrieve=extend_schema(
        operation_id="get_task",
        summary="Retrieve a task with its history",
        description="Supervisors, the assigned paramedic and the creating service.",
        parameters=CONDITIONAL_PARAMETERS,
        responses={200: TaskDetailSerializer, **NOT_MODIFIED},
    ),
    create=extend_schema(
        operation_id="create_task",
        summary="Receive an emergency request",
        description=(
            "201 with the new task; the same `request_id` again answers 200 with the "
            "existing task and creates nothing. 409 `duplicate_request_id` when the "
            "`request_id` belongs to another caller."
        ),
        request=TaskCreateSerializer,
        responses={
            201: TaskDetailSerializer,
            200: TaskDetailSerializer,
            **error_responses(409),
        },
    ),
)
class TaskViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = TaskFilter
    ordering_fields = ["created_at", "updated_at", "priority"]
    ordering = ["-created_at"]
    lookup_value_regex = "[^/]+"
    extra_query_params: tuple[str, ...] = ()  # per action (see api.filters)

    def get_permissions(self):
        if self.action == "retrieve":
            return [IsAuthenticated(), CanReadTask()]
        if self.action in ("candidates", "assign"):
            return [IsAuthenticated(), IsSupervisor()]
        return [IsAuthenticated(), CanSubmitTasks()]

    def get_queryset(self):
        tasks = tasks_visible_to(self.request.user)
        return with_history(tasks) if self.action == "retrieve" else tasks

    def get_serializer_class(self):
        return TaskDetailSerializer if self.action == "retrieve" else TaskSerializer

    def retrieve(self, request, *args, **kwargs):
        return retrieve_with_etag(
            self,
            request,
            narrow=tasks_visible_to(request.user),  # without the history prefetch
            fields=("updated_at", "paramedic_id"),
            etag=task_etag,
        )

    def create(self, request, *args, **kwargs):
        serializer = TaskCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = task_create(**serializer.validated_data, created_by=request.user)
        return _detail(
            request, result.task, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="list_task_candidates",
        summary="Available paramedics ranked for this task (supervisors)",
        description="A plain list, best first (not paginated): at most `limit` entries.",
        parameters=[CandidatesQuerySerializer],
        responses={200: CandidateSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        pagination_class=None,
        filter_backends=[RejectUnknownQueryParams],
        filterset_class=None,
        extra_query_params=("limit",),
    )
    def candidates(self, request, pk=None):
        task = self.get_object()
        query = CandidatesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ranked = rank_candidates(task, limit=query.validated_data["limit"])
        return Response(CandidateSerializer(ranked, many=True).data)

    @extend_schema(
        operation_id="assign_task",
        summary="Assign a pending task (supervisors)",
        description=(
            "`{paramedic: id}` assigns that paramedic; `{}` assigns the top candidate. "
            "409 `paramedic_unavailable` when the paramedic is not available, "
            "`invalid_transition` when the task is not pending."
        ),
        request=TaskAssignSerializer,
        responses={200: TaskDetailSerializer, **error_responses(409)},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        task = self.get_object()
        serializer = TaskAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = task_assign(
            task_id=task.pk,
            actor=request.user,
            paramedic_id=serializer.validated_data.get("paramedic"),
            note=serializer.validated_data.get("note", ""),
        )
        return _detail(request, task)

    @extend_schema(
        operation_id="cancel_task",
        summary="Cancel a task (supervisors, the creating service)",
        description="409 `invalid_transition` when the task is already completed or cancelled.",
        request=TaskCancelSerializer,
        responses={200: TaskDetailSerializer, **error_responses(409)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        task = self.get_object()
        serializer = TaskCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = task_cancel(
            task_id=task.pk, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return _detail(request, task)


def _paramedic_owner(view, request, **kwargs) -> str:
    """Idempotency-Keys of the field endpoints are the paramedic's (404 for others)."""
    return f"paramedic:{view._paramedic().pk}"


class ParamedicTaskViewSet(viewsets.GenericViewSet):
    """The seed's task endpoints under /paramedics/{id}/tasks (supervisor or self)."""

    permission_classes = [IsAuthenticated, IsSupervisorOrParamedic]
    serializer_class = TaskSerializer
    filterset_class = ParamedicTaskFilter
    ordering_fields = ["created_at", "updated_at", "priority"]
    ordering = ["-created_at"]

    def _paramedic(self):
        return paramedic_visible_to(self.request.user, self.kwargs["paramedic_id"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return EmergencyTask.objects.none()
        return EmergencyTask.objects.filter(paramedic=self._paramedic())

    @extend_schema(
        operation_id="list_paramedic_tasks",
        summary="Tasks assigned to a paramedic",
        description=(
            "With `updated_after`, a device catching up after a dead zone gets the tasks "
            "changed since then, and under `removed` the ids of tasks that left its list "
            "since then (declined, reassigned, cancelled after it let go): drop them."
        ),
        parameters=CONDITIONAL_PARAMETERS,
        responses={200: ParamedicTaskPageSerializer, **NOT_MODIFIED},
    )
    def list(self, request, paramedic_id=None):
        paramedic = self._paramedic()
        tasks = self.filter_queryset(self.get_queryset())
        since = self._updated_after(request)
        removed = None
        if request.headers.get("If-None-Match"):  # the 304 path: no page is built
            removed = self._removed(paramedic, since)
            etag = self._list_etag(request, self._state(tasks), removed)
            if (unchanged := not_modified(request, etag)) is not None:
                return unchanged
        page = self.paginate_queryset(tasks)
        response = self.get_paginated_response(
            TaskSerializer(page, many=True, context={"request": request}).data
        )
        if removed is None:
            removed = self._removed(paramedic, since)
        response.data["removed"] = removed
        whole = response.data["next"] is None and response.data["previous"] is None
        state = (len(page), max((t.updated_at for t in page), default=None))
        etag = self._list_etag(request, state if whole else self._state(tasks), removed)
        return tagged(response, etag)

    @staticmethod
    def _removed(paramedic, since):
        return [str(task_id) for task_id in tasks_removed_from(paramedic, since)] if since else []

    @staticmethod
    def _state(tasks) -> tuple:
        """How many tasks match and the latest change among them: any change saves
        `updated_at`, and a task joining or leaving changes one or the other."""
        state = tasks.order_by().aggregate(n=Count("pk"), last=Max("updated_at"))
        return state["n"], state["last"]

    @staticmethod
    def _list_etag(request, state: tuple, removed) -> str:
        """The page depends on the matching tasks, on what left the list since
        `updated_after`, and on the URL (filters, page, host: the page links)."""
        count, last = state
        stamp = last.isoformat() if last else ""
        return make_etag("paramedic-tasks", request.build_absolute_uri(), count, stamp, removed)

    @staticmethod
    def _updated_after(request):
        raw = request.query_params.get("updated_after")
        if raw is None:
            return None
        # Already validated by the filter backend; parsed the same way (to UTC).
        return ParamedicTaskFilter.base_filters["updated_after"].field.clean(raw)

    @extend_schema(
        operation_id="report_task_status",
        summary="Report a status change on the paramedic's own task",
        description=(
            "`in_progress` starts an assigned task, `completed` completes a started one, "
            "`pending` declines an assigned one (it returns to dispatch). A move the "
            "task's state does not allow answers 409 `invalid_transition`."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=TaskStatusUpdateSerializer,
        responses={200: TaskDetailSerializer, **error_responses(409, 422)},
    )
    @idempotent(owner=_paramedic_owner)
    def update_status(self, request, paramedic_id=None, task_id=None):
        paramedic = self._paramedic()
        serializer = TaskStatusUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = task_change_status(
            task_id=task_id,
            to_status=data["status"],
            actor=request.user,
            note=data.get("note", ""),
            at=data.get("at"),
            paramedic_id=paramedic.pk,
        )
        return _detail(request, task)

    @extend_schema(
        operation_id="record_task_milestone",
        summary="Record a field milestone of the paramedic's own task",
        description=(
            "Milestones (design §17) in order, each at most once, any may be skipped: "
            "`acknowledged` on an assigned task; `en_route` starts it (as status "
            "`in_progress` does); `on_scene`, `at_patient`, `transporting`, "
            "`at_destination` on a task in progress. `at` is the device's time. A "
            "milestone already recorded, out of order or in the wrong state is 409 "
            "`invalid_milestone`."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=TaskMilestoneSerializer,
        responses={200: TaskDetailSerializer, **error_responses(409, 422)},
    )
    @idempotent(owner=_paramedic_owner)
    def record_milestone(self, request, paramedic_id=None, task_id=None):
        paramedic = self._paramedic()
        serializer = TaskMilestoneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = task_record_milestone(
            task_id=task_id,
            milestone=data["milestone"],
            actor=request.user,
            at=data.get("at"),
            note=data.get("note", ""),
            paramedic_id=paramedic.pk,
        )
        return _detail(request, task)
