"""The AsyncAPI 3.0 document of the event bus (design §11), written from the catalogue.

`make schema` writes it to docs/asyncapi.yaml next to the OpenAPI schema; the
tests fail when the committed file differs from what the code describes, and
check real messages against it; CI validates it with AsyncAPI's own parser.
Names (exchanges, queues, source) are those of the settings, by default the
ones design §11 fixes.
"""

import copy
import re

from django.conf import settings

from . import catalogue
from .bus import CONTENT_TYPE, TYPE_PREFIX

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING = "0.3.0"
# Every attribute the service sets on the CloudEvents it publishes.
PUBLISHED_ATTRIBUTES = [
    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"
]  # fmt: skip
COMPONENT_REF = re.compile(r"^#/components/schemas/(.+)$")


def _exchange(name: str) -> dict:
    return {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}


def _ref(*parts: str) -> dict:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _cloud_event(*, required: list[str], source: dict, type_: dict, data: dict) -> dict:
    return {
        "type": "object",
        "required": required,
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": source,
            "type": type_,
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"type": "string", "const": "application/json"},
            "data": data,
        },
    }


def _component_refs(schema) -> set[str]:
    if isinstance(schema, dict):
        found = set()
        match = COMPONENT_REF.match(schema.get("$ref", "")) if "$ref" in schema else None
        if match:
            found.add(match.group(1))
        for value in schema.values():
            found |= _component_refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(_component_refs(item) for item in schema)) if schema else set()
    return set()


def _copy_components(schemas: dict, api_components: dict, names: set[str]) -> None:
    """Copy the API's component schemas the messages use (and theirs, transitively)."""
    todo = sorted(names)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        schemas[name] = copy.deepcopy(api_components[name])
        todo.extend(sorted(_component_refs(schemas[name]) - set(schemas)))


def document(api_schema: dict) -> dict:
    """The AsyncAPI document; `api_schema` is the OpenAPI one (for shared components)."""
    channels, operations, messages = {}, {}, {}
    schemas: dict = {}

    for entry in catalogue.published():
        type_ = TYPE_PREFIX + entry.kind
        schemas.setdefault(entry.data_name, entry.data)
        if schemas[entry.data_name] != entry.data:
            raise ValueError(f"two data schemas are named {entry.data_name}")
        messages[type_] = {
            "name": type_,
            "title": entry.kind,
            "summary": entry.summary,
            "contentType": CONTENT_TYPE,
            "payload": _cloud_event(
                required=PUBLISHED_ATTRIBUTES,
                source={"type": "string", "const": settings.EVENT_SOURCE},
                type_={"type": "string", "const": type_},
                data=_ref("components", "schemas", entry.data_name),
            ),
            "bindings": {"amqp": {"messageType": type_, "bindingVersion": AMQP_BINDING}},
        }
        attributes = messages[type_]["payload"]["properties"]
        attributes["subject"]["description"] = entry.subject
        attributes["id"]["description"] = (
            "The outbox event's id: the same on every redelivery, the key to drop duplicates."
        )
        channels[entry.kind] = {
            "address": entry.kind,
            "title": f"{settings.EVENT_EXCHANGE} {entry.kind}",
            "description": (
                f"Routing key `{entry.kind}` on the topic exchange `{settings.EVENT_EXCHANGE}`."
            ),
            "messages": {type_: _ref("components", "messages", type_)},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": _exchange(settings.EVENT_EXCHANGE),
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }
        operations[f"publish.{entry.kind}"] = {
            "action": "send",
            "channel": _ref("channels", entry.kind),
            "summary": entry.summary,
            "description": (
                "Published from the transactional outbox once the change has committed, "
                "with publisher confirms: at least once, so the same `id` may arrive again."
            ),
            "messages": [_ref("channels", entry.kind, "messages", type_)],
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING}},
        }

    api_refs: set[str] = set()
    for entry in catalogue.consumed():
        api_refs |= _component_refs(entry.data)
        channel = f"in.{entry.type}"
        messages[entry.type] = {
            "name": entry.type,
            "title": entry.type,
            "summary": entry.summary,
            "contentType": CONTENT_TYPE,
            "payload": _cloud_event(
                required=["specversion", "id", "source", "type", "data"],
                source={"type": "string", "minLength": 1},
                type_={"type": "string", "const": entry.type},
                data=entry.data,
            ),
            "bindings": {"amqp": {"messageType": entry.type, "bindingVersion": AMQP_BINDING}},
        }
        channels[channel] = {
            "address": settings.EVENT_INBOUND_ROUTING_KEY,
            "title": f"{settings.EVENT_INBOUND_EXCHANGE} {settings.EVENT_INBOUND_ROUTING_KEY}",
            "description": (
                f"Published by the Patient Service to the topic exchange "
                f"`{settings.EVENT_INBOUND_EXCHANGE}`. The service declares its durable queue "
                f"`{settings.EVENT_INBOUND_QUEUE}` and binds it with this routing key."
            ),
            "messages": {entry.type: _ref("components", "messages", entry.type)},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": _exchange(settings.EVENT_INBOUND_EXCHANGE),
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }
        operations[f"consume.{entry.type}"] = {
            "action": "receive",
            "channel": _ref("channels", channel),
            "summary": entry.summary,
            "description": (
                "Acknowledged once the task is committed. A message that can never succeed "
                f"goes to `{settings.EVENT_INBOUND_DEAD_QUEUE}` with its reason; while the "
                "database is down the message is retried, never dropped. The message_id, "
                "content type, ce- headers and CloudEvent attributes must be UTF-8 text "
                "without control characters, ids and type at most 128 characters. A "
                "message delivered more than EVENT_CONSUMER_MAX_DELIVERIES (5) times "
                "without being finished is dead-lettered as poison."
            ),
            "messages": [_ref("channels", channel, "messages", entry.type)],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING}},
        }

    if catalogue.consumed():
        dead = settings.EVENT_INBOUND_DEAD_QUEUE
        messages["dead-letter"] = {
            "name": "dead-letter",
            "title": "A refused message",
            "summary": "A consumed message that can never succeed, with the reason.",
            "headers": {
                "type": "object",
                "required": ["x-dead-reason"],
                "properties": {
                    "x-dead-reason": {
                        "type": "string",
                        "maxLength": 500,
                        "description": (
                            "Why: e.g. `not JSON: ...`, `not a CloudEvent 1.0: ...`, "
                            "`message_id holds a control or unprintable character`, "
                            "`invalid data: ...`, `handler failed: ...` (an error in the "
                            "service), `poison: delivered N times without being finished`, "
                            "`headers cannot be decoded (...)`."
                        ),
                    },
                    "x-original-exchange": {"type": "string"},
                    "x-original-routing-key": {"type": "string"},
                    "x-dead-dropped-headers": {
                        "type": "integer",
                        "minimum": 1,
                        "description": (
                            "How many of the original headers were left out: ones AMQP "
                            "cannot encode again, or past 64 KiB. The rest are copied."
                        ),
                    },
                },
            },
            "payload": {"description": "The message's body exactly as it arrived."},
        }
        channels["dead-letters"] = {
            "address": dead,
            "title": dead,
            "description": "Refused inbound messages, kept for support (never requeued).",
            "messages": {"dead-letter": _ref("components", "messages", "dead-letter")},
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": dead,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }
        operations["dead-letter"] = {
            "action": "send",
            "channel": _ref("channels", "dead-letters"),
            "summary": "Set a message that can never succeed aside, with its reason.",
            "messages": [_ref("channels", "dead-letters", "messages", "dead-letter")],
        }

    _copy_components(schemas, api_schema.get("components", {}).get("schemas", {}), api_refs)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Paramedic Service events",
            "version": api_schema.get("info", {}).get("version", "1.0.0"),
            "description": (
                "CloudEvents 1.0 in structured JSON mode on RabbitMQ (design §11). Every "
                "event the service records is published to a durable topic exchange with "
                "the kind as routing key, persistent, `message_id` = the event `id`; "
                "subscribers must tolerate duplicates (same `id`). Emergency requests are "
                "consumed from the Patient Service's exchange. Payloads carry ids and state, "
                "never patient details or image bytes."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker of EVENT_BUS_URL (host and credentials per deployment).",
            }
        },
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
        },
    }
