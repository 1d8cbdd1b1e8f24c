"""Consume emergency requests from the event bus: `make consumer` (design §11).

Declares the durable queue EVENT_INBOUND_QUEUE bound to EVENT_INBOUND_EXCHANGE
with EVENT_INBOUND_ROUTING_KEY, and its dead-letter queue; creates a task for
each `patient.emergency.requested` CloudEvent (tasks.inbound), as the service
account EVENT_CONSUMER_USERNAME, which it makes on first start. SIGTERM or SIGINT
finishes the message in hand, then exits.
"""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations import publishing
from integrations.bus import broker_label
from integrations.consumer import consumer_from_settings
from tasks.inbound import (
    ConsumerAccountUnusable,
    emergency_request_received,
    provision_consumer_user,
)


class Command(BaseCommand):
    help = "Create tasks from the Patient Service's emergency requests on the event bus."

    def handle(self, *args, **options):
        if not settings.EVENT_BUS_URL:
            raise CommandError("EVENT_BUS_URL is not set: there is no bus to consume from.")
        try:
            _, created = provision_consumer_user()
        except ConsumerAccountUnusable as exc:
            raise CommandError(str(exc)) from None
        if created:
            self.stdout.write(
                f"created the service account {settings.EVENT_CONSUMER_USERNAME!r} "
                "(group services, no password)"
            )
        consumer = consumer_from_settings(emergency_request_received)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: consumer.stop())
        self.stdout.write(
            f"starting: {settings.EVENT_INBOUND_QUEUE} on {broker_label(settings.EVENT_BUS_URL)}"
        )
        consumer.run()
        publishing.flush(timeout=5)  # the new tasks' events (else the relay takes them)
        self.stdout.write(f"stopped after {consumer.handled} message(s)")
