"""What delivering a task event to each outside service means (design §8).

Subscribed in TasksConfig.ready(); integrations/ calls these with the
destination's client and the outbox row, and never imports this app.
"""

from integrations.clients import (
    NotificationServiceClient,
    PatientServiceClient,
    PermanentIntegrationError,
)
from integrations.models import Destination, OutboxEvent
from integrations.registry import subscribe

from .events import TaskEvent
from .services import PatientDetailsRejected, task_store_patient_details


def fetch_patient_details(client: PatientServiceClient, event: OutboxEvent) -> None:
    details = client.fetch_patient(event.payload["patient_id"], idempotency_key=str(event.pk))
    try:
        task_store_patient_details(task_id=event.aggregate_id, details=details)
    except PatientDetailsRejected as exc:
        raise PermanentIntegrationError(f"patient-service: {exc.detail}") from exc


def report_task_status(client: PatientServiceClient, event: OutboxEvent) -> None:
    payload = event.payload
    client.report_status(
        payload["request_id"],
        {
            "event_id": str(event.pk),
            "task_id": payload["task_id"],
            "status": payload["status"],
            "paramedic_id": payload.get("paramedic_id"),
            "milestone": payload.get("milestone"),
            "at": payload["at"],
        },
        idempotency_key=str(event.pk),
    )


def notify(client: NotificationServiceClient, event: OutboxEvent) -> None:
    client.notify(
        {"event_id": str(event.pk), "kind": event.kind, **event.payload},
        idempotency_key=str(event.pk),
    )


# (kind, destination, handler): who hears of what, and how.
SUBSCRIPTIONS = (
    (TaskEvent.CREATED, Destination.PATIENT, fetch_patient_details),
    (TaskEvent.ASSIGNED, Destination.NOTIFICATION, notify),
    (TaskEvent.ASSIGNED, Destination.PATIENT, report_task_status),
    (TaskEvent.STATUS_CHANGED, Destination.PATIENT, report_task_status),
    (TaskEvent.MILESTONE, Destination.PATIENT, report_task_status),
    (TaskEvent.REMINDER, Destination.NOTIFICATION, notify),
)


def subscribe_all() -> None:
    for kind, destination, handler in SUBSCRIPTIONS:
        subscribe(kind=kind, destination=destination, handler=handler)
