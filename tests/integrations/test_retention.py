"""What the integration tables keep, and for how long (the purge jobs)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from core.retention import delete_in_batches
from integrations import consumer, delivery, live
from integrations.jobs import purge_delivered, purge_live_events
from integrations.models import (
    Destination,
    InboxMessage,
    InboxOutcome,
    LiveEvent,
    OutboxEvent,
    OutboxState,
)

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def outbox_row(state: str, *, age: timedelta) -> OutboxEvent:
    now = timezone.now()
    return OutboxEvent.objects.create(
        kind="task.assigned",
        destination=Destination.NOTIFICATION,
        aggregate_type="task",
        aggregate_id=uuid.uuid4(),
        next_attempt_at=now - age,
        state=state,
        delivered_at=now - age if state == OutboxState.DELIVERED else None,
    )


class TestOutbox:
    def test_delivered_rows_go_after_the_retention(self, settings):
        settings.OUTBOX_RETENTION_DAYS = 7
        old = outbox_row(OutboxState.DELIVERED, age=8 * DAY)
        recent = outbox_row(OutboxState.DELIVERED, age=6 * DAY)

        assert delivery.purge() == 1
        assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [recent.pk]
        assert not OutboxEvent.objects.filter(pk=old.pk).exists()

    @pytest.mark.parametrize("state", [OutboxState.PENDING, OutboxState.DEAD])
    def test_undelivered_rows_stay_however_old(self, state):
        row = outbox_row(state, age=400 * DAY)
        assert delivery.purge() == 0
        assert OutboxEvent.objects.filter(pk=row.pk).exists()


class TestInbox:
    def test_outcomes_go_after_the_retention(self, settings):
        settings.INBOX_RETENTION_DAYS = 30
        for message_id in ("old", "recent"):
            InboxMessage.objects.create(message_id=message_id, outcome=InboxOutcome.CREATED)
        InboxMessage.objects.filter(message_id="old").update(received_at=timezone.now() - 31 * DAY)

        assert consumer.purge() == 1
        assert list(InboxMessage.objects.values_list("message_id", flat=True)) == ["recent"]


def test_live_events_go_after_their_retention(settings):
    settings.LIVE_RETENTION_HOURS = 48
    for _ in range(2):
        LiveEvent.objects.create(kind="task.assigned", subject_type="task", subject_id=uuid.uuid4())
    first = LiveEvent.objects.order_by("id").first()
    LiveEvent.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=49))

    assert live.purge() == 1
    assert not LiveEvent.objects.filter(pk=first.pk).exists()


def test_a_backlog_is_deleted_in_batches(django_assert_num_queries):
    rows = [outbox_row(OutboxState.DELIVERED, age=30 * DAY) for _ in range(7)]
    keep = outbox_row(OutboxState.PENDING, age=30 * DAY)
    delivered = OutboxEvent.objects.filter(state=OutboxState.DELIVERED)

    with django_assert_num_queries(4 + 3):  # 3 full batches and an empty one; 3 deletes
        assert delete_in_batches(delivered, batch=3) == len(rows)
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [keep.pk]


def test_beat_runs_the_purges(settings):
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {purge_delivered.name, purge_live_events.name} <= schedule
    outbox_row(OutboxState.DELIVERED, age=400 * DAY)
    InboxMessage.objects.create(message_id="m", outcome=InboxOutcome.DEAD)
    InboxMessage.objects.update(received_at=timezone.now() - 400 * DAY)

    assert purge_delivered.delay().get() == 2
    assert not OutboxEvent.objects.exists() and not InboxMessage.objects.exists()
