from django.urls import re_path

from api.routers import UUID_PATTERN, OptionalSlashRouter

from .views import (
    HandoffViewSet,
    HospitalHandoffsView,
    HospitalViewSet,
    TaskDestinationsView,
    TaskHandoffView,
)

router = OptionalSlashRouter()
router.register("hospitals", HospitalViewSet, basename="hospital")
router.register("handoffs", HandoffViewSet, basename="handoff")

urlpatterns = [
    *router.urls,
    re_path(
        rf"^tasks/(?P<task_id>{UUID_PATTERN})/destinations/?$",
        TaskDestinationsView.as_view(),
        name="task-destinations",
    ),
    re_path(
        rf"^tasks/(?P<task_id>{UUID_PATTERN})/handoff/?$",
        TaskHandoffView.as_view(),
        name="task-handoff",
    ),
    re_path(
        rf"^hospitals/(?P<hospital_id>{UUID_PATTERN})/handoffs/?$",
        HospitalHandoffsView.as_view(),
        name="hospital-handoffs",
    ),
]
