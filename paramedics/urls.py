from api.routers import OptionalSlashRouter

from .views import ParamedicViewSet, ShiftViewSet, StationViewSet

router = OptionalSlashRouter()
router.register("paramedics", ParamedicViewSet, basename="paramedic")
router.register("stations", StationViewSet, basename="station")
router.register("shifts", ShiftViewSet, basename="shift")

urlpatterns = router.urls
