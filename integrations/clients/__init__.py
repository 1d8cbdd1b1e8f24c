"""HTTP clients for the outside services (design §8), one module each.

Each call carries the bearer token and the outbox event id as Idempotency-Key,
has timeouts, and never logs request or response bodies (patient data).
"""

from collections.abc import Callable

from django.conf import settings

from ..models import Destination
from .base import IntegrationError, PermanentIntegrationError, ServiceClient
from .dicomweb import DicomWebClient, StoredInstance
from .notification import NotificationServiceClient
from .patient import PatientServiceClient
from .xray import XrayServiceClient


def xray_service_client() -> ServiceClient:
    """The X-ray Service's transport, by XRAY_SERVICE_KIND: JSON (§8) or DICOMweb (§15)."""
    if settings.XRAY_SERVICE_KIND == "dicomweb":
        return DicomWebClient()
    return XrayServiceClient()


# What makes the client that speaks to each destination.
CLIENTS: dict[str, Callable[[], ServiceClient]] = {
    Destination.PATIENT: PatientServiceClient,
    Destination.NOTIFICATION: NotificationServiceClient,
    Destination.XRAY: xray_service_client,
}

__all__ = [
    "CLIENTS",
    "DicomWebClient",
    "IntegrationError",
    "NotificationServiceClient",
    "PatientServiceClient",
    "PermanentIntegrationError",
    "ServiceClient",
    "StoredInstance",
    "XrayServiceClient",
]
