"""What delivering an X-ray event to the X-ray Service means (DESIGN §8).

Subscribed in XraysConfig.ready(); integrations/ never imports this app.
"""

from integrations.clients import XrayServiceClient
from integrations.models import Destination, OutboxEvent
from integrations.registry import subscribe

from .events import XrayEvent
from .services import xray_set_service_id


def register_xray(client: XrayServiceClient, event: OutboxEvent) -> None:
    """POST the metadata; keep the X-ray Service's id for the record."""
    response = client.register(
        {"event_id": str(event.pk), **event.payload}, idempotency_key=str(event.pk)
    )
    if response.get("id"):
        xray_set_service_id(xray_id=event.aggregate_id, service_id=str(response["id"]))


def subscribe_all() -> None:
    subscribe(kind=XrayEvent.UPLOADED, destination=Destination.XRAY, handler=register_xray)
