import threading
from urllib.parse import quote

import httpx
from django.conf import settings

from core.payloads import JsonRefused, load_json

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class IntegrationError(Exception):
    """A delivery failed in a way worth retrying (network, timeout, 5xx, 429)."""


class PermanentIntegrationError(IntegrationError):
    """The service refused the request for good (4xx): retrying will not help."""


# One connection pool per base URL per process, made on first use (so after a
# worker forks). A new httpx.Client per call costs tens of milliseconds of TLS
# setup (bench/README.md, "Outbox delivery").
_pools: dict[str, httpx.Client] = {}
_pools_lock = threading.Lock()


def _pool(base_url: str) -> httpx.Client:
    with _pools_lock:
        client = _pools.get(base_url)
        if client is None:
            client = _pools[base_url] = httpx.Client(timeout=TIMEOUT)
        return client


def url_for(base_url: str, *segments: str) -> str:
    """`base_url` followed by one percent-encoded path segment per value (design §16).

    The only way the clients build a URL. A value from a client (a request or
    patient id) can never add a segment, a query or a fragment: "/", "?", "#"
    and "%" are encoded; "." and ".." (which a server would resolve as "this"
    and "up one") and empty segments are refused.
    """
    encoded = []
    for segment in segments:
        segment = str(segment)
        if segment in ("", ".", ".."):
            raise PermanentIntegrationError(f"refused URL path segment {segment!r}")
        encoded.append(quote(segment, safe=""))
    return "/".join([base_url.rstrip("/"), *encoded])


class ServiceClient:
    """A small JSON-over-HTTP client for one outside service."""

    name = "service"
    url_setting = ""

    def __init__(self, base_url: str | None = None, token: str | None = None):
        self.base_url = (base_url or getattr(settings, self.url_setting, "")).rstrip("/")
        self.token = token if token is not None else settings.INTEGRATION_TOKEN

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def request(
        self, method: str, segments: tuple[str, ...], *, idempotency_key: str, json=None
    ) -> dict:
        """`method` {base_url}/{segment}/...: each segment encoded by `url_for`."""
        url = url_for(self.base_url, *segments)
        headers = {"Idempotency-Key": idempotency_key, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = _pool(self.base_url).request(method, url, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise IntegrationError(f"{self.name}: {exc.__class__.__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise IntegrationError(f"{self.name}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentIntegrationError(f"{self.name}: HTTP {response.status_code}")
        if not response.content:
            return {}
        try:
            body = load_json(response.content)
        except JsonRefused as exc:
            raise IntegrationError(f"{self.name}: response is not acceptable JSON") from exc
        return body if isinstance(body, dict) else {"data": body}
