from api.routers import OptionalSlashRouter

from .views import ParamedicViewSet

router = OptionalSlashRouter()
router.register("paramedics", ParamedicViewSet, basename="paramedic")

urlpatterns = router.urls
