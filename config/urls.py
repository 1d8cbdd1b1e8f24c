from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import auth
from core import health, metrics, views

api_v1 = [
    re_path(r"^auth/token/?$", auth.TokenObtainView.as_view(), name="token_obtain"),
    re_path(r"^auth/token/refresh/?$", auth.TokenRefreshView.as_view(), name="token_refresh"),
    re_path(r"^auth/token/blacklist/?$", auth.TokenBlacklistView.as_view(), name="token_blacklist"),
    re_path(r"^me/?$", auth.MeView.as_view(), name="me"),
    path("", include("tasks.urls")),
    path("", include("xrays.urls")),
    path("", include("paramedics.urls")),
    path("", include("hospitals.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
]

admin.site.site_header = "Paramedic Service: supervisor console"
admin.site.site_title = "Paramedic Service"
