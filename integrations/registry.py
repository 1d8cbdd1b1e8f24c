"""Who hears of which event, and what delivering it means: declared by the domain apps.

integrations/ owns the outbox and the transports and knows nothing of tasks or
X-rays. Each domain app names its event kinds and, in its AppConfig.ready(),
subscribes a handler per (kind, destination): the handler gets the
destination's client and the outbox row, and does the call (and whatever the
domain keeps from the answer). An event is routed to exactly the destinations
that subscribed to its kind.
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from .clients import ServiceClient
from .models import OutboxEvent

Handler = Callable[[ServiceClient, OutboxEvent], None]

_handlers: dict[tuple[str, str], Handler] = {}


def subscribe(*, kind: str, destination: str, handler: Handler) -> None:
    """Deliver events of `kind` to `destination` through `handler` (at app start-up)."""
    key = (str(kind), str(destination))
    if _handlers.get(key, handler) is not handler:
        raise ImproperlyConfigured(f"{kind} -> {destination} has two handlers")
    _handlers[key] = handler


def destinations(kind: str) -> tuple[str, ...]:
    """The destinations subscribed to `kind`, in subscription order."""
    found = tuple(destination for (k, destination) in _handlers if k == kind)
    if not found:
        # Recording an event nobody subscribed to is a programming error, not data loss
        # to shrug off: the change would commit with no outbox row.
        raise ImproperlyConfigured(f"no destination subscribes to event kind {kind!r}")
    return found


def kinds() -> tuple[str, ...]:
    """Every event kind some destination subscribes to."""
    return tuple(dict.fromkeys(kind for kind, _ in _handlers))


def handler_for(*, kind: str, destination: str) -> Handler:
    return _handlers[(kind, destination)]
