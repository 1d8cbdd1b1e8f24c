import threading

import httpx
from django.conf import settings

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
# A response body is never logged or stored; keep only this much of the reason.
MAX_ERROR_TEXT = 200


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


def close_pools() -> None:
    with _pools_lock:
        for client in _pools.values():
            client.close()
        _pools.clear()


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

    def request(self, method: str, path: str, *, idempotency_key: str, json=None) -> dict:
        headers = {"Idempotency-Key": idempotency_key, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = _pool(self.base_url).request(
                method, f"{self.base_url}{path}", json=json, headers=headers
            )
        except httpx.HTTPError as exc:
            raise IntegrationError(f"{self.name}: {exc.__class__.__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise IntegrationError(f"{self.name}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentIntegrationError(f"{self.name}: HTTP {response.status_code}")
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationError(f"{self.name}: response is not JSON") from exc
        return body if isinstance(body, dict) else {"data": body}
