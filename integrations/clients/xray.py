from .base import ServiceClient


class XrayServiceClient(ServiceClient):
    name = "xray-service"
    url_setting = "XRAY_SERVICE_URL"

    def register(self, payload: dict, *, idempotency_key: str) -> dict:
        """POST /xrays: metadata, storage location and consultation; returns {id}."""
        return self.request("POST", ("xrays",), idempotency_key=idempotency_key, json=payload)
