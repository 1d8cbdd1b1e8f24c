import logging

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
# A response body is never logged or stored; keep only this much of the reason.
MAX_ERROR_TEXT = 200


class IntegrationError(Exception):
    """A delivery failed in a way worth retrying (network, timeout, 5xx, 429)."""


class PermanentIntegrationError(IntegrationError):
    """The service refused the request for good (4xx): retrying will not help."""


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
            response = httpx.request(
                method, f"{self.base_url}{path}", json=json, headers=headers, timeout=TIMEOUT
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
