"""What delivering a handoff event to each outside service means (design §8, §21).

Subscribed in HospitalsConfig.ready(); integrations/ never imports this app. The
Notification Service passes a report on to the hospital's own channels (pager, ED
screen) as it does a task's assignment to a crew.
"""

from integrations.clients import NotificationServiceClient
from integrations.models import Destination, OutboxEvent
from integrations.registry import subscribe

from .events import HandoffEvent


def notify(client: NotificationServiceClient, event: OutboxEvent) -> None:
    client.notify(
        {"event_id": str(event.pk), "kind": event.kind, **event.payload},
        idempotency_key=str(event.pk),
    )


SUBSCRIPTIONS = tuple((kind, Destination.NOTIFICATION, notify) for kind in HandoffEvent)


def subscribe_all() -> None:
    for kind, destination, handler in SUBSCRIPTIONS:
        subscribe(kind=kind, destination=destination, handler=handler)
