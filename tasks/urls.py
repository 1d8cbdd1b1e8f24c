from django.urls import re_path

from config.routers import OptionalSlashRouter

from .views import ParamedicTaskViewSet, TaskViewSet

UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

router = OptionalSlashRouter()
router.register("tasks", TaskViewSet, basename="task")

urlpatterns = [
    *router.urls,
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID})/tasks/?$",
        ParamedicTaskViewSet.as_view({"get": "list"}),
        name="paramedic-tasks",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID})/tasks/(?P<task_id>{UUID})/?$",
        ParamedicTaskViewSet.as_view({"post": "update_status"}),
        name="paramedic-task-status",
    ),
]
