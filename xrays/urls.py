from django.urls import re_path

from api.routers import UUID_PATTERN, OptionalSlashRouter

from .views import (
    ParamedicXrayListView,
    UploadSessionCreateView,
    UploadSessionViewSet,
    XrayFileView,
    XrayUploadPartView,
    XrayUploadView,
    XrayViewSet,
)

router = OptionalSlashRouter()
router.register("xrays", XrayViewSet, basename="xray")
router.register("xray-uploads", UploadSessionViewSet, basename="xray-upload")

urlpatterns = [
    re_path(rf"^xrays/(?P<pk>{UUID_PATTERN})/file/?$", XrayFileView.as_view(), name="xray-file"),
    re_path(
        rf"^xray-uploads/(?P<pk>{UUID_PATTERN})/parts/(?P<number>[1-9][0-9]{{0,4}})/?$",
        XrayUploadPartView.as_view(),
        name="xray-upload-part",
    ),
    *router.urls,
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/xray/?$",
        XrayUploadView.as_view(),
        name="paramedic-xray-upload",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/xray-uploads/?$",
        UploadSessionCreateView.as_view(),
        name="paramedic-xray-uploads",
    ),
    re_path(
        rf"^paramedics/(?P<paramedic_id>{UUID_PATTERN})/xrays/?$",
        ParamedicXrayListView.as_view({"get": "list"}),
        name="paramedic-xrays",
    ),
]
