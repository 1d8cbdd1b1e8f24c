"""HTTP clients for the outside services (DESIGN §8), one module each.

Each call carries the bearer token and the outbox event id as Idempotency-Key,
has timeouts, and never logs request or response bodies (patient data).
"""

from ..models import Destination
from .base import IntegrationError, PermanentIntegrationError, ServiceClient
from .notification import NotificationServiceClient
from .patient import PatientServiceClient
from .xray import XrayServiceClient

# The client that speaks to each destination.
CLIENTS: dict[str, type[ServiceClient]] = {
    Destination.PATIENT: PatientServiceClient,
    Destination.NOTIFICATION: NotificationServiceClient,
    Destination.XRAY: XrayServiceClient,
}

__all__ = [
    "CLIENTS",
    "IntegrationError",
    "NotificationServiceClient",
    "PatientServiceClient",
    "PermanentIntegrationError",
    "ServiceClient",
    "XrayServiceClient",
]
