"""What delivering a roster event to each outside service means (design §8, §14).

Subscribed in ParamedicsConfig.ready(); integrations/ never imports this app.
"""

from integrations.clients import NotificationServiceClient
from integrations.models import Destination, OutboxEvent
from integrations.registry import subscribe

from .events import ParamedicEvent


def notify(client: NotificationServiceClient, event: OutboxEvent) -> None:
    """Tell the paramedic (through the Notification Service) that its shift is over."""
    client.notify(
        {"event_id": str(event.pk), "kind": event.kind, **event.payload},
        idempotency_key=str(event.pk),
    )


SUBSCRIPTIONS = ((ParamedicEvent.SHIFT_ENDED, Destination.NOTIFICATION, notify),)


def subscribe_all() -> None:
    for kind, destination, handler in SUBSCRIPTIONS:
        subscribe(kind=kind, destination=destination, handler=handler)
