from django.urls import re_path

from config.routers import OptionalSlashRouter
from tasks.urls import UUID

from .views import ParamedicXrayListView, XrayFileView, XrayUploadView, XrayViewSet

router = OptionalSlashRouter()
router.register("xrays", XrayViewSet, basename="xray")

urlpatterns = [
    re_path(rf"^xrays/(?P<pk>{UUID})/file/?$", XrayFileView.as_view(), name="xray-file"),
    *router.urls,
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID})/xray/?$",
        XrayUploadView.as_view(),
        name="paramedic-xray-upload",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID})/xrays/?$",
        ParamedicXrayListView.as_view({"get": "list"}),
        name="paramedic-xrays",
    ),
]
