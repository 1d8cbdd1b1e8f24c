"""Middleware for every page, API and console alike: input guards and the access log."""

import logging
import time
import zoneinfo

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from .net import client_address

access_logger = logging.getLogger("paramedic.access")
STATIC_PREFIXES = ("/" + settings.STATIC_URL.lstrip("/"), "/favicon.ico")

NUL = "\x00"


class RejectNulBytesMiddleware:
    """A NUL character in the path, the query string or a form field is a 400.

    No text column can store it (PostgreSQL refuses it in any string), so it is
    refused at the door instead of failing deep inside a query. JSON bodies and
    multipart uploads are validated by their parsers and fields (DRF's string
    fields refuse NUL); reading a multipart body here would also bypass the
    upload's streaming handlers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            detail = "The request contains a NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "invalid", "detail": detail}, status=400)
            return HttpResponse(detail, status=400, content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if NUL in request.path:
            return True
        if any(NUL in key or NUL in value for key, value in _pairs(request.GET)):
            return True
        form = request.content_type == "application/x-www-form-urlencoded"
        return form and any(NUL in key or NUL in value for key, value in _pairs(request.POST))


def _pairs(querydict):
    for key, values in querydict.lists():
        for value in values:
            yield key, value


class AccessLogMiddleware:
    """One line per request: method, path, status, duration and client address.

    The service writes its own access log (the servers' are switched off): the
    path is logged without its query string, which may carry a signed download
    token (design §16), and the client address follows the one rule of
    core.net.client_address. The request id is attached by core.logging.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        # Static files (the console's scripts and styles, the icon) are most of a
        # page's requests and say nothing about the service: DEBUG, not INFO.
        static = request.path.startswith(STATIC_PREFIXES)
        access_logger.log(
            logging.DEBUG if static else logging.INFO,
            "%s %s %s %.1fms %s",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            client_address(request),
        )
        return response


class ConsoleTimeZoneMiddleware:
    """The console (/admin/) shows and reads times in CONSOLE_TIME_ZONE (env
    DJANGO_TIME_ZONE); everything else (the API, streams, jobs) stays in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.zone = zoneinfo.ZoneInfo(settings.CONSOLE_TIME_ZONE)
        self.prefix = "/admin/"

    def __call__(self, request):
        if not request.path.startswith(self.prefix):
            return self.get_response(request)
        with timezone.override(self.zone):
            return self.get_response(request)
