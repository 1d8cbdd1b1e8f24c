"""The roster pages in a real browser (design §14): the week view's gaps, a CSV import
through the admin, and the dispatch map with no tile server reachable.

Screenshots go under var/screenshots/ (roster-*.png), like the console's.
"""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from paramedics.models import Shift
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, shot
from tests.factories import ParamedicFactory, StationFactory, TaskFactory, UserFactory, shift_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        # Nothing but the service under test: no tile server, no CDN, no internet.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(live_server.url)
                else route.abort()
            ),
        )
        yield page
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def log_in(page, live_server) -> None:
    UserFactory(
        username="roster-lead",
        password="roster-lead-password-1",
        is_staff=True,
        groups=["supervisors"],
    )
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "roster-lead")
    page.fill("#id_password", "roster-lead-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#dispatch-links")


def test_the_week_view_shows_a_gap(page, live_server):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    mitte = StationFactory(code="MITTE", name="Rescue station Mitte", min_staff=2)
    full = StationFactory(code="NORD", name="Rescue station Nord", min_staff=1)
    a, b = ParamedicFactory(badge_number="W-1"), ParamedicFactory(badge_number="W-2")
    c, d = ParamedicFactory(badge_number="W-3"), ParamedicFactory(badge_number="W-4")
    shift_for(
        a,
        b,
        station=mitte,
        starts_at=today + timedelta(hours=6),
        ends_at=today + timedelta(hours=18),
    )
    for day in range(7):
        start = today + timedelta(days=day)
        shift_for(c, station=full, starts_at=start, ends_at=start + timedelta(hours=12))
        noon = start + timedelta(hours=12)
        shift_for(d, station=full, starts_at=noon, ends_at=noon + timedelta(hours=12))

    log_in(page, live_server)
    page.click("#dispatch-links >> text=Roster week view")
    page.wait_for_selector("#coverage")

    first = page.locator('tr[data-station="MITTE"] td').first
    assert "gap" in first.get_attribute("class")
    assert first.get_attribute("data-gaps") == "2"
    assert "24 / 48 h" in first.inner_text()
    assert "00:00" in first.inner_text() and "18:00" in first.inner_text()
    assert page.locator('tr[data-station="NORD"] td.gap').count() == 0
    assert page.locator('tr[data-station="NORD"] td.covered').count() == 7
    shot(page, "roster-week")

    # A gap's link opens the add form with the gap filled in.
    first.locator("a.add-shift").last.click()
    page.wait_for_selector("#shift_form")
    assert page.input_value("#id_starts_at_1") == "18:00:00"
    assert page.locator("#id_station").input_value() == str(mitte.pk)


def test_a_supervisor_imports_shifts_from_a_csv(page, live_server, tmp_path):
    StationFactory(code="MITTE")
    ParamedicFactory(badge_number="I-1")
    ParamedicFactory(badge_number="I-2")
    day = (timezone.now() + timedelta(days=2)).date().isoformat()
    csv = tmp_path / "shifts.csv"
    csv.write_text(
        "id,station,starts_at,ends_at,paramedics,notes\n"
        f",MITTE,{day} 06:00,{day} 18:00,I-1;I-2,day\n"
        f",MITTE,{day} 18:00,{day} 23:00,I-1,late\n"
    )

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,station,starts_at,ends_at,paramedics,notes\n"
        f",MITTE,{day} 06:00,{day} 18:00,I-1,fine\n"
        f",MITTE,{day} 12:00,{day} 20:00,I-1,overlaps the row above\n"
        f",MITTE,{day} 06:00,{day} 18:00,NOBODY-1,unknown badge\n"
        f",MITTE,not-a-date,{day} 18:00,I-2,bad date\n"
    )

    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/paramedics/shift/")
    page.click("text=Import")
    page.set_input_files("#id_import_file", str(bad))
    page.select_option("#id_format", label="csv")
    page.click("input[type=submit]")
    page.wait_for_selector("text=Unknown badge number(s): NOBODY-1")
    text = page.content()
    assert "already on shift" in text and "is not a date and time" in text
    assert page.locator("input[name=confirm]").count() == 0
    page.locator(".validation-error-count").nth(1).hover()  # the unknown badge's row
    shot(page, "roster-import-errors")
    assert not Shift.objects.exists()

    page.goto(f"{live_server.url}/admin/paramedics/shift/import/")
    page.set_input_files("#id_import_file", str(csv))
    page.select_option("#id_format", label="csv")
    page.click("input[type=submit]")
    page.wait_for_selector("input[name=confirm]")
    assert "I-1;I-2" in page.content() or "I-1" in page.content()
    shot(page, "roster-import-preview")
    assert not Shift.objects.exists()

    page.click("input[name=confirm]")
    page.wait_for_selector(".messagelist")
    assert "2 new" in page.locator(".messagelist").inner_text()
    assert Shift.objects.count() == 2
    shot(page, "roster-import-done")


def test_the_map_shows_a_marker_per_available_paramedic_without_tiles(page, live_server, settings):
    # A tile server nobody listens on: every tile fails, the markers must not.
    settings.MAP_TILE_URL = "http://127.0.0.1:9/{z}/{x}/{y}.png"
    now = timezone.now()
    StationFactory(code="MITTE", lat=52.52, lon=13.405)
    StationFactory(code="SPANDAU", lat=52.536, lon=13.2)
    for i, age in enumerate((1, 10, 60)):
        ParamedicFactory(
            badge_number=f"MAP-{i}",
            base_station="MITTE",
            last_lat=52.5 + i / 50,
            last_lon=13.3 + i / 20,
            last_location_at=now - timedelta(minutes=age),
        )
    ParamedicFactory(
        badge_number="MAP-OFF",
        base_station="MITTE",
        status="off_duty",
        last_lat=52.4,
        last_lon=13.4,
        last_location_at=now,
    )
    ParamedicFactory(badge_number="MAP-NOWHERE", base_station="MITTE")  # available, no location
    TaskFactory(request_id="map-call-1", lat=52.51, lon=13.39)

    log_in(page, live_server)
    page.click("#dispatch-links >> text=Dispatch map")
    page.wait_for_selector('#map[data-ready="true"]')

    assert page.locator("path.marker-paramedic").count() == 3
    assert page.locator("path.marker-age-fresh").count() == 1
    assert page.locator("path.marker-age-ageing").count() == 1
    assert page.locator("path.marker-age-stale").count() == 1
    assert page.locator(".marker-station").count() == 2
    assert page.locator("path.marker-task").count() == 1
    # No tile arrived (the server is unreachable), and the page did not care.
    loaded = page.evaluate(
        "Array.from(document.querySelectorAll('img.leaflet-tile-loaded')).length"
    )
    assert loaded == 0
    shot(page, "roster-map")
