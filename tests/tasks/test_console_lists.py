"""Console lists that open on what a person needs (design §19)."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from integrations.models import OutboxEvent, OutboxState
from tests.factories import ParamedicFactory, TaskFactory, put_on_task


def test_the_outbox_list_opens_on_dead_then_pending_newest_first(console_client, db):
    OutboxEvent.objects.all().delete()
    now = timezone.now()
    for name, state, minutes in (
        ("old-delivered", OutboxState.DELIVERED, 1),
        ("old-dead", OutboxState.DEAD, 50),
        ("new-dead", OutboxState.DEAD, 5),
        ("pending", OutboxState.PENDING, 2),
        ("new-delivered", OutboxState.DELIVERED, 0),
    ):
        event = OutboxEvent.objects.create(
            kind=f"test.{name}",
            destination="notification",
            aggregate_type="task",
            aggregate_id="00000000-0000-0000-0000-000000000001",
            state=state,
            next_attempt_at=now,
            last_error="x" * 300 if state == OutboxState.DEAD else "",
        )
        OutboxEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(minutes=minutes))

    html = console_client.get(reverse("admin:integrations_outboxevent_changelist")).content.decode()

    order = ["new-dead", "old-dead", "pending", "new-delivered", "old-delivered"]
    positions = [html.index(f"test.{name}") for name in order]
    assert positions == sorted(positions)
    assert "x" * 61 not in html.split('title="', 1)[0]  # the error is shortened in the cell


def test_the_roster_does_not_call_a_paramedic_without_location_plainly_available(
    console_client, db
):
    ParamedicFactory(
        badge_number="LOC-1", last_lat=52.5, last_lon=13.4, last_location_at=timezone.now()
    )
    ParamedicFactory(badge_number="NOLOC-1")

    html = console_client.get(reverse("admin:paramedics_paramedic_changelist")).content.decode()

    assert 'data-status="available" data-located="yes"' in html
    assert 'data-located="no"' in html and "Available, no location" in html


def test_the_overview_shows_status_labels(console_client, paramedic, db):
    task = put_on_task(paramedic)
    TaskFactory()
    html = console_client.get(reverse("admin:tasks_overview")).content.decode()
    tiles = html[html.index('class="tiles"') :]
    assert "</b>Assigned</div>" in tiles and "</b>In progress</div>" in tiles
    assert "</b>in_progress" not in tiles
    assert task
