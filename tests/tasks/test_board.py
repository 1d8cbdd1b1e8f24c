"""The one-screen dispatch board (design §19): who is free, cover, aging, last step."""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from tasks.models import EmergencyTask
from tasks.services import task_change_status, task_record_milestone
from tests.factories import ParamedicFactory, StationFactory, TaskFactory, put_on_task, shift_for

BOARD = reverse("admin:tasks_board")


def cards(html: str) -> dict[str, str]:
    """request id -> its card's HTML (up to the next card)."""
    return {chunk.split('"', 1)[0]: chunk for chunk in html.split('data-task="')[1:]}


def test_it_shows_free_paramedics_by_station_and_cover_against_min_staff(console_client, db):
    now = timezone.now()
    mitte = StationFactory(code="MITTE", name="Mitte", min_staff=2)
    StationFactory(code="PANKOW", name="Pankow", min_staff=1)
    fresh = ParamedicFactory(
        badge_number="FR-1",
        base_station="MITTE",
        last_lat=52.5,
        last_lon=13.4,
        last_location_at=now,
    )
    stale = ParamedicFactory(
        badge_number="ST-1",
        base_station="MITTE",
        last_lat=52.5,
        last_lon=13.4,
        last_location_at=now - timedelta(hours=2),
    )
    ParamedicFactory(badge_number="OFF-1", base_station="MITTE", status="off_duty")
    ParamedicFactory(badge_number="NOWHERE-1", base_station=None)  # no station, no location
    shift_for(
        fresh,
        stale,
        station=mitte,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
    )

    html = console_client.get(BOARD).content.decode()
    stations = html[html.index('id="stations"') : html.index('id="board"')]

    assert 'data-station="MITTE"' in stations
    assert 'data-on-shift="2" data-min-staff="2"' in stations
    pankow = stations[stations.index('data-station="PANKOW"') :]
    assert 'data-on-shift="0" data-min-staff="1">On shift 0 of 1 · <b>short</b>' in pankow
    assert 'class="free" data-badge="FR-1"' in stations
    assert 'class="free free-stale" data-badge="ST-1"' in stations
    assert 'class="free free-stale" data-badge="NOWHERE-1"' in stations and "No station" in stations
    assert "OFF-1" not in stations


def test_active_cards_count_from_the_last_step_not_from_the_call(console_client, paramedic, db):
    task = put_on_task(paramedic, request_id="step-1", assigned_ago=timedelta(minutes=40))
    task_change_status(
        task_id=task.pk,
        to_status="in_progress",
        actor=paramedic.user,
        at=timezone.now() - timedelta(minutes=30),
    )
    task_record_milestone(
        task_id=task.pk,
        milestone="on_scene",
        actor=paramedic.user,
        at=timezone.now() - timedelta(minutes=3),
    )

    card = cards(console_client.get(BOARD).content.decode())["step-1"]

    assert "3\xa0minutes since last step" in card
    assert "40\xa0minutes" not in card


def test_waiting_is_coloured_against_the_tasks_target(console_client, db):
    now = timezone.now()
    for request_id, minutes in (("fresh-1", 1), ("half-1", 12), ("late-1", 36)):
        task = TaskFactory(request_id=request_id, priority="urgent", call_type="stroke")
        EmergencyTask.objects.filter(pk=task.pk).update(created_at=now - timedelta(minutes=minutes))

    board = cards(console_client.get(BOARD).content.decode())

    # A stroke at urgent: a 15-minute target.
    assert 'data-target="ok"' in board["fresh-1"]
    assert 'data-target="near"' in board["half-1"]
    assert 'data-target="late"' in board["late-1"]


def test_the_alert_threshold_reaches_the_page(console_client, settings, db):
    settings.ALERT_UNASSIGNED_SECONDS = 45
    TaskFactory(request_id="crit-1", priority="critical")
    html = console_client.get(BOARD).content.decode()
    assert 'data-alert-seconds="45"' in html
    assert 'data-priority="critical" data-status="pending"' in cards(html)["crit-1"]


def test_the_board_queries_grow_only_with_the_pending_tasks_it_ranks(
    console_client, django_assert_num_queries, db
):
    def grow(n: int) -> None:
        for _ in range(n):
            station = StationFactory()
            ParamedicFactory(base_station=station.code)
            TaskFactory(lat=0.0, lon=0.0)  # nobody near: the picker lists nobody

    # Session, user, groups; the active tasks with paramedics and call types; per
    # pending task the ranking (the shift-table probe and one query per radius: six,
    # as nobody has a location); the stations with their cover, the free paramedics;
    # the user's and its groups' permissions.
    grow(1)
    ContentType.objects.clear_cache()
    with django_assert_num_queries(3 + 1 + 7 + 2 + 2):
        console_client.get(BOARD)
    grow(3)
    ContentType.objects.clear_cache()
    with django_assert_num_queries(3 + 1 + 7 * 4 + 2 + 2):
        console_client.get(BOARD)
