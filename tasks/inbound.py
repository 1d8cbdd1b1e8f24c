"""Emergency requests arriving on the event bus (design §11).

The Patient Service publishes `patient.emergency.requested` CloudEvents whose data
is the `POST /tasks` body. Each becomes a task exactly as that endpoint makes one:
the same validation (TaskCreateSerializer) and the same service (task_create,
idempotent by request_id), as the configured service account.
"""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.errors import ApplicationError
from core.roles import SERVICES, is_service
from integrations import catalogue
from integrations.consumer import Rejected
from integrations.models import InboxOutcome

from .serializers import TaskCreateSerializer
from .services import task_create

EVENT_TYPE = "patient.emergency.requested"


def describe_messages() -> None:
    """The catalogue entry of the bus for emergency requests (at start-up)."""
    catalogue.consumes(
        EVENT_TYPE,
        summary=(
            "The Patient Service asks for help: each request becomes a task, as with "
            "POST /tasks (the same request_id twice is one task)."
        ),
        data={"$ref": "#/components/schemas/TaskCreateRequest"},
    )


def consumer_user():
    """The service account tasks from the bus are created as; None if unusable."""
    user = get_user_model().objects.filter(username=settings.EVENT_CONSUMER_USERNAME).first()
    return user if user is not None and user.is_active and is_service(user) else None


class ConsumerAccountUnusable(Exception):
    """EVENT_CONSUMER_USERNAME names an account someone disabled or gave another role."""


def provision_consumer_user():
    """The consumer's service account, made on first start if there is none: a user in
    the `services` group with no usable password (nobody logs in as it; the consumer
    acts as it). An existing account is never changed: one that is inactive or not a
    service was made so by a person, and the consumer refuses to start instead."""
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(
            username=settings.EVENT_CONSUMER_USERNAME
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=SERVICES))
    if consumer_user() is None:
        raise ConsumerAccountUnusable(
            f"EVENT_CONSUMER_USERNAME {settings.EVENT_CONSUMER_USERNAME!r} exists but is "
            "not an active user in the `services` group: activate it and add it to the "
            "group in the admin, or set EVENT_CONSUMER_USERNAME to another name."
        )
    return user, created


def emergency_request_received(event) -> str:
    """Turn one CloudEvent into a task; the outcome, or Rejected with the reason."""
    if event.get_type() != EVENT_TYPE:
        raise Rejected(f"type {event.get_type()!r} is not {EVENT_TYPE!r}")
    data = event.get_data()
    if not isinstance(data, dict):
        raise Rejected("data is not a JSON object (the POST /tasks body)")
    serializer = TaskCreateSerializer(data=data)
    if not serializer.is_valid():
        raise Rejected(f"invalid data: {json.dumps(serializer.errors, default=str)[:400]}")
    user = consumer_user()
    if user is None:
        # Configuration, not data: retrying cannot help this message, nor is it its fault.
        raise Rejected(f"no active service account {settings.EVENT_CONSUMER_USERNAME!r}")
    try:
        result = task_create(**serializer.validated_data, created_by=user)
    except ApplicationError as refusal:  # e.g. another caller's request_id
        raise Rejected(f"{refusal.code}: {refusal.detail}") from None
    return InboxOutcome.CREATED if result.created else InboxOutcome.DUPLICATE
