from .base import ServiceClient


class NotificationServiceClient(ServiceClient):
    name = "notification-service"
    url_setting = "NOTIFICATION_SERVICE_URL"

    def notify(self, payload: dict, *, idempotency_key: str) -> dict:
        """POST /notifications."""
        return self.request(
            "POST", ("notifications",), idempotency_key=idempotency_key, json=payload
        )
