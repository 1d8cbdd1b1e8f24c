"""Pages every site answers that belong to no app."""

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request):
    """Browsers ask for /favicon.ico on every page that names no icon (Swagger UI,
    error pages): one permanent redirect to the static icon instead of a 404."""
    return HttpResponsePermanentRedirect(static("core/favicon.svg"))
