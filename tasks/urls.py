from django.urls import re_path

from api.routers import UUID_PATTERN, OptionalSlashRouter

from .streams import ParamedicEventsView, SupervisorEventsView
from .views import ParamedicTaskViewSet, TaskViewSet

router = OptionalSlashRouter()
router.register("tasks", TaskViewSet, basename="task")

urlpatterns = [
    *router.urls,
    re_path(r"^events/?$", SupervisorEventsView.as_view(), name="events"),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/events/?$",
        ParamedicEventsView.as_view(),
        name="paramedic-events",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/tasks/?$",
        ParamedicTaskViewSet.as_view({"get": "list"}),
        name="paramedic-tasks",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/tasks/(?P<task_id>{UUID_PATTERN})/?$",
        ParamedicTaskViewSet.as_view({"post": "update_status"}),
        name="paramedic-task-status",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/tasks/(?P<task_id>{UUID_PATTERN})"
        r"/milestones/?$",
        ParamedicTaskViewSet.as_view({"post": "record_milestone"}),
        name="paramedic-task-milestones",
    ),
]
