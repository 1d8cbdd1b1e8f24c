"""The outbox and the event bus as Prometheus sees them (design §10), read at scrape time.

Counted from the database, so whichever process answers /metrics reports what
every web process, worker, relay and consumer did.
"""

import logging

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core.errors import DATABASE_DOWN

from .models import Destination, InboxMessage, InboxOutcome, OutboxEvent, OutboxState

logger = logging.getLogger(__name__)


class OutboxCollector:
    def collect(self):
        try:
            by_state = list(
                OutboxEvent.objects.values("destination", "state")
                .order_by()
                .annotate(rows=Count("id"))
            )
            oldest = dict(
                OutboxEvent.objects.filter(state=OutboxState.PENDING)
                .values("destination")
                .order_by()
                .annotate(oldest=Min("created_at"))
                .values_list("destination", "oldest")
            )
            consumed = dict(
                InboxMessage.objects.values("outcome")
                .order_by()
                .annotate(rows=Count("id"))
                .values_list("outcome", "rows")
            )
        except DATABASE_DOWN as exc:  # /metrics still answers, with what the process knows
            logger.warning("outbox metrics unavailable: %s", exc.__class__.__name__)
            return
        counts = {(row["destination"], row["state"]): row["rows"] for row in by_state}
        now = timezone.now()

        rows = GaugeMetricFamily(
            "paramedic_outbox_events",
            "Outbox rows per destination and state.",
            labels=["destination", "state"],
        )
        dead = GaugeMetricFamily(
            "paramedic_outbox_dead_events",
            "Outbox rows that gave up (state dead), waiting for a supervisor's retry.",
            labels=["destination"],
        )
        age = GaugeMetricFamily(
            "paramedic_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered outbox row (0 when none is waiting).",
            labels=["destination"],
        )
        for destination in Destination.values:
            for state in OutboxState.values:
                rows.add_metric([destination, state], counts.get((destination, state), 0))
            dead.add_metric([destination], counts.get((destination, OutboxState.DEAD), 0))
            since = oldest.get(destination)
            age.add_metric([destination], (now - since).total_seconds() if since else 0.0)
        yield rows
        yield dead
        yield age

        published = CounterMetricFamily(
            "paramedic_bus_published_events",
            "Events the broker confirmed on the paramedic.events exchange.",
        )
        published.add_metric([], counts.get((Destination.BUS, OutboxState.DELIVERED), 0))
        yield published

        handled = CounterMetricFamily(
            "paramedic_bus_consumed_messages",
            "Messages consumed from the bus, per outcome.",
            labels=["outcome"],
        )
        for outcome in InboxOutcome.values:
            handled.add_metric([outcome], consumed.get(outcome, 0))
        yield handled
