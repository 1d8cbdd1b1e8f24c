from django.urls import re_path

from api.routers import UUID_PATTERN, OptionalSlashRouter

from .views import ParamedicXrayListView, XrayFileView, XrayUploadView, XrayViewSet

router = OptionalSlashRouter()
router.register("xrays", XrayViewSet, basename="xray")

urlpatterns = [
    re_path(rf"^xrays/(?P<pk>{UUID_PATTERN})/file/?$", XrayFileView.as_view(), name="xray-file"),
    *router.urls,
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/xray/?$",
        XrayUploadView.as_view(),
        name="paramedic-xray-upload",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/xrays/?$",
        ParamedicXrayListView.as_view({"get": "list"}),
        name="paramedic-xrays",
    ),
]
