from django.urls import re_path

from api.routers import UUID_PATTERN, OptionalSlashRouter

from .views import HospitalViewSet, TaskDestinationsView

router = OptionalSlashRouter()
router.register("hospitals", HospitalViewSet, basename="hospital")

urlpatterns = [
    *router.urls,
    re_path(
        rf"^tasks/(?P<task_id>{UUID_PATTERN})/destinations/?$",
        TaskDestinationsView.as_view(),
        name="task-destinations",
    ),
]
