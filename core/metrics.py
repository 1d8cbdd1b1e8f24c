"""/metrics in Prometheus' text format (design §10), via prometheus-client.

Readable with `Authorization: Bearer <METRICS_TOKEN>`, or from a loopback
client address (core.net's one rule: behind declared proxies, the real client).

HTTP requests are counted and timed per route: the URL pattern
(`api/v1/tasks/{pk}`), never the raw path, whose ids would make a new series
for every task. Apps add collectors that read their state at scrape time
(`register`), e.g. the outbox rows; those come from the database, so any web
process reports the whole service, workers and consumers included.

With several server processes, set PROMETHEUS_MULTIPROC_DIR to an empty
directory shared by them (prometheus-client's multiprocess mode): the HTTP
series are then summed over the processes.
"""

import hmac
import ipaddress
import logging
import os
import re
import time
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .net import client_address

logger = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "paramedic_http_requests",
    "HTTP requests answered, per method, route and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "paramedic_http_request_duration_seconds",
    "Time to answer an HTTP request, per method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Collectors that read state when scraped (never aggregated across processes).
_at_scrape = CollectorRegistry(auto_describe=False)


def register(collector) -> None:
    """Add a collector (an object with collect()) read at each scrape."""
    _at_scrape.register(collector)


@lru_cache(maxsize=512)
def _tidy(route: str) -> str:
    """`^tasks/(?P<pk>[^/]+)/?$` -> `tasks/{pk}`; `<uuid:pk>` -> `{pk}`."""
    route = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return route.replace("^", "").replace("$", "").replace("/?", "").rstrip("/") or "/"


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    return _tidy(match.route) if match is not None and match.route else UNMATCHED


class MetricsMiddleware:
    """Counts and times every request by route (after the URL resolved, if it did)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in HTTP_METHODS else "other"
        route = route_of(request)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
        return response


def _may_read(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return True
    try:
        return ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        return False


def metrics(request):
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"code": "method_not_allowed", "detail": "Only GET reads /metrics."},
            status=405,
            headers={"Allow": "GET, HEAD"},
        )
    if not _may_read(request):
        return JsonResponse(
            {
                "code": "permission_denied",
                "detail": "Metrics need the METRICS_TOKEN bearer token or a loopback client.",
            },
            status=403,
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        body = generate_latest(processes)
    else:
        body = generate_latest(REGISTRY)
    body += generate_latest(_at_scrape)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
