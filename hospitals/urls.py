from api.routers import OptionalSlashRouter

from .views import HospitalViewSet

router = OptionalSlashRouter()
router.register("hospitals", HospitalViewSet, basename="hospital")

urlpatterns = router.urls
