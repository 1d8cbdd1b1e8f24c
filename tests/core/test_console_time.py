"""The console's times are local (DJANGO_TIME_ZONE) and say their zone; the API's
stay ISO 8601 with offset."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from paramedics.services import shift_create
from tasks.models import EmergencyTask
from tests.factories import ParamedicFactory, StationFactory, TaskFactory

WINTER_NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def berlin(settings):
    settings.CONSOLE_TIME_ZONE = "Europe/Berlin"  # read when the middleware is built


def test_the_console_shows_local_times_with_their_zone(berlin, console_client, db):
    task = TaskFactory(request_id="tz-1")
    EmergencyTask.objects.filter(pk=task.pk).update(created_at=WINTER_NOON_UTC)

    html = console_client.get(reverse("admin:tasks_emergencytask_changelist")).content.decode()
    assert "7 Dec 2026, 13:00 CET" in html


def test_the_api_writes_utc_with_its_offset_whatever_the_console_zone(
    berlin, supervisor_client, db
):
    task = TaskFactory(request_id="tz-2")
    EmergencyTask.objects.filter(pk=task.pk).update(created_at=WINTER_NOON_UTC)

    data = supervisor_client.get(f"/api/v1/tasks/{task.pk}").json()
    assert data["created_at"] == "2026-12-07T12:00:00Z"


def test_the_week_view_counts_the_consoles_days(berlin, console_client, db):
    """A Berlin day runs 23:00 to 23:00 UTC in winter, and the spring-forward day
    has 23 hours: covered whole, with no gap, in the console's own days."""
    station = StationFactory(code="TZ-ST", min_staff=1)
    medic = ParamedicFactory()
    zone = ZoneInfo("Europe/Berlin")
    for day in (datetime(2026, 3, 28), datetime(2026, 3, 29)):  # the clocks go forward on 29th
        start = day.replace(tzinfo=zone)
        end = (day + timedelta(days=1)).replace(tzinfo=zone)
        shift_create(station=station, starts_at=start, ends_at=end, paramedics=[medic])

    html = console_client.get(
        reverse("admin:paramedics_shift_week") + "?start=2026-03-28"
    ).content.decode()

    assert "(Europe/Berlin)" in html
    row = html[html.index(">TZ-ST</a>") :].split("</tr>")[0]
    cells = re.findall(
        r'data-day="(2026-03-2[89])" data-gaps="(\d+)">\s*<div class="hours">([^<]+)', row
    )
    assert cells == [("2026-03-28", "0", "24 / 24 h"), ("2026-03-29", "0", "23 / 23 h")]
