"""HTTP clients for the outside services (DESIGN §8).

Each call carries the bearer token and the outbox event id as Idempotency-Key,
has timeouts, and never logs request or response bodies (patient data).
"""

from .base import IntegrationError, PermanentIntegrationError, ServiceClient

__all__ = ["IntegrationError", "PermanentIntegrationError", "ServiceClient"]
