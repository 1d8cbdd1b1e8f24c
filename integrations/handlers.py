"""What delivering each (destination, event kind) means.

With no URL configured for a destination, the event is logged and counts as
delivered (the embedded default), so `make run` works alone.
"""

import logging
from collections.abc import Callable

from .clients import ServiceClient
from .clients.notification import NotificationServiceClient
from .clients.patient import PatientServiceClient
from .clients.xray import XrayServiceClient
from .models import Destination, OutboxEvent

logger = logging.getLogger(__name__)

CLIENTS: dict[str, type[ServiceClient]] = {
    Destination.PATIENT: PatientServiceClient,
    Destination.NOTIFICATION: NotificationServiceClient,
    Destination.XRAY: XrayServiceClient,
}


def fetch_patient_details(client: PatientServiceClient, event: OutboxEvent) -> None:
    from tasks.services import task_store_patient_details

    details = client.fetch_patient(event.payload["patient_id"], idempotency_key=str(event.pk))
    task_store_patient_details(task_id=event.aggregate_id, details=details)


def report_task_status(client: PatientServiceClient, event: OutboxEvent) -> None:
    payload = event.payload
    client.report_status(
        payload["request_id"],
        {
            "event_id": str(event.pk),
            "task_id": payload["task_id"],
            "status": payload["status"],
            "paramedic_id": payload.get("paramedic_id"),
            "at": payload["at"],
        },
        idempotency_key=str(event.pk),
    )


def notify(client: NotificationServiceClient, event: OutboxEvent) -> None:
    client.notify(
        {"event_id": str(event.pk), "kind": event.kind, **event.payload},
        idempotency_key=str(event.pk),
    )


def register_xray(client: XrayServiceClient, event: OutboxEvent) -> None:
    from xrays.services import xray_set_service_id

    response = client.register(
        {"event_id": str(event.pk), **event.payload}, idempotency_key=str(event.pk)
    )
    if response.get("id"):
        xray_set_service_id(xray_id=event.aggregate_id, service_id=str(response["id"]))


HANDLERS: dict[tuple[str, str], Callable] = {
    (Destination.PATIENT, "task.created"): fetch_patient_details,
    (Destination.PATIENT, "task.assigned"): report_task_status,
    (Destination.PATIENT, "task.status_changed"): report_task_status,
    (Destination.NOTIFICATION, "task.assigned"): notify,
    (Destination.NOTIFICATION, "task.reminder"): notify,
    (Destination.XRAY, "xray.uploaded"): register_xray,
}


def handle(event: OutboxEvent) -> None:
    client = CLIENTS[event.destination]()
    if not client.configured:
        logger.info(
            "event %s %s -> %s: no URL configured, logged only",
            event.pk,
            event.kind,
            event.destination,
        )
        return
    HANDLERS[(event.destination, event.kind)](client, event)
