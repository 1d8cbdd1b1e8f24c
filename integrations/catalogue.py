"""The event bus's catalogue (design §11): what the service publishes and consumes.

Domain apps describe each event kind they record, and each message type they
consume, at start-up (AppConfig.ready), next to the code that builds or reads
the data: a summary and the JSON Schema of the CloudEvent's `data`. A schema
may point at the API's components (`{"$ref": "#/components/schemas/..."}`),
e.g. the `POST /tasks` body. integrations.asyncapi writes the AsyncAPI document
from this; the tests check real messages against it.
"""

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Published:
    kind: str  # the routing key; the CloudEvent type is `paramedic.<kind>`
    summary: str
    subject: str  # what the CloudEvent's `subject` is the id of
    data: dict
    data_name: str  # the data schema's name in the document (shared by kinds)


@dataclass(frozen=True)
class Consumed:
    type: str  # the CloudEvent type
    summary: str
    data: dict


_published: dict[str, Published] = {}
_consumed: dict[str, Consumed] = {}


def publishes(kind: str, *, summary: str, subject: str, data: dict, data_name: str) -> None:
    entry = Published(str(kind), summary, subject, data, data_name)
    if _published.setdefault(entry.kind, entry) != entry:
        raise ImproperlyConfigured(f"event kind {kind!r} is described twice")


def consumes(type_: str, *, summary: str, data: dict) -> None:
    entry = Consumed(type_, summary, data)
    if _consumed.setdefault(type_, entry) != entry:
        raise ImproperlyConfigured(f"message type {type_!r} is described twice")


def published() -> list[Published]:
    return sorted(_published.values(), key=lambda entry: entry.kind)


def consumed() -> list[Consumed]:
    return sorted(_consumed.values(), key=lambda entry: entry.type)
