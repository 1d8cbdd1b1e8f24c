"""A dispatch shift run from the console alone (design §19), in Debian's Chromium.

One test drives the shift on the ASGI server (the board and the incident page follow
/api/v1/events): a critical call arrives through the API and appears on the open
board, the alert fires past ALERT_UNASSIGNED_SECONDS, the dispatcher opens the
incident page and assigns the recommended candidate with the keyboard alone, the
crew's milestones appear live, and another task is cancelled with a reason. The
other checks every console page for sideways scrolling at 390 and 768 px and for
serious or critical axe-core violations (printed per page), and saves screenshots
at 1440 and 390 px under var/screenshots/.
"""

import os
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright
from rest_framework_simplejwt.tokens import AccessToken

from tasks.services import call_types_ensure_defaults
from tests.browser.chromium import (
    CHROMIUM,
    CHROMIUM_ARGS,
    axe_violations,
    scrolls_sideways,
    shot,
)
from tests.factories import ParamedicFactory, StationFactory, TaskFactory, UserFactory, shift_for
from tests.server.sse import AsgiServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "shift-lead-password-1"


@pytest.fixture
def server(settings):
    settings.LIVE_POLL_SECONDS = 0.2
    settings.LIVE_HEARTBEAT_SECONDS = 1
    settings.MAP_TILE_URL = ""  # no tiles offline: the markers are the map
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    server = AsgiServer()
    yield server
    server.stop()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(browser, server, next_url: str):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "shift-lead")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    return page


def a_shift():
    """A station with two located crews on shift, and a routine task already waiting."""
    call_types_ensure_defaults()  # a transactional test before may have flushed them
    now = timezone.now()
    supervisor = UserFactory(
        username="shift-lead", password=PASSWORD, is_staff=True, groups=["supervisors"]
    )
    mitte = StationFactory(code="MITTE", name="Mitte", min_staff=2, lat=52.52, lon=13.40)
    near = ParamedicFactory(
        badge_number="M-1",
        base_station="MITTE",
        last_lat=52.521,
        last_lon=13.41,
        last_location_at=now,
    )
    far = ParamedicFactory(
        badge_number="M-2",
        base_station="MITTE",
        last_lat=52.56,
        last_lon=13.45,
        last_location_at=now - timedelta(minutes=40),
    )
    shift_for(
        near,
        far,
        station=mitte,
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(hours=6),
    )
    other = TaskFactory(request_id="call-other", priority="routine", address="Karl-Marx-Allee 90")
    return supervisor, near, other


def test_a_dispatcher_runs_a_shift_from_the_console(server, browser, settings):
    settings.ALERT_UNASSIGNED_SECONDS = 2
    supervisor, near, other = a_shift()
    token = AccessToken.for_user(supervisor)
    page = log_in(browser, server, "/admin/tasks/emergencytask/board/")
    expect(page.locator("#live-status")).to_have_attribute("data-live", "open")
    expect(page.locator("#unassigned-alert")).to_be_hidden()
    page.evaluate("window.notReloaded = true")

    # A critical call arrives through the API and appears on the open board.
    response = httpx.post(
        f"{server.url}/api/v1/tasks",
        json={
            "request_id": "call-critical",
            "patient_id": "p-1",
            "call_type": "cardiac_arrest",
            "address": "Alexanderplatz 1",
            "location": {"lat": 52.52, "lon": 13.405},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    card = page.locator('[data-column="pending"] .card[data-task="call-critical"]')
    expect(card).to_be_visible(timeout=5_000)
    assert page.evaluate("window.notReloaded") is True

    # Past the threshold the alert shows and sounds; muting is remembered.
    banner = page.locator("#unassigned-alert")
    expect(banner).to_be_visible(timeout=5_000)
    expect(banner).to_contain_text("call-critical")
    assert page.evaluate("window.consoleAlertBeeps") >= 1
    shot(page, "shift-01-board-alert-1440")
    page.click("#alert-mute")
    page.reload()
    expect(page.locator("#alert-mute")).to_have_attribute("aria-pressed", "true")
    expect(banner).to_be_visible()
    assert page.evaluate("window.consoleAlertBeeps") == 0  # muted: the banner only

    # The incident page; the recommended candidate is assigned with the keyboard alone.
    card.locator("a").first.click()
    expect(page.locator("#incident")).to_have_attribute("data-status", "pending")
    recommended = page.locator("#assign-form input[name=paramedic]:checked")
    expect(recommended).to_have_value(str(near.pk))
    recommended.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "assign-button"
    page.keyboard.press("Enter")
    expect(page.locator(".messagelist")).to_contain_text("Assigned to")
    expect(page.locator("#incident")).to_have_attribute("data-status", "assigned")
    expect(page.locator("#live-status")).to_have_attribute("data-live", "open")

    # The crew's milestones arrive live.
    crew = {"Authorization": f"Bearer {AccessToken.for_user(near.user)}"}
    task_url = f"{server.url}/api/v1/paramedics/{near.pk}/tasks/{task_id}"
    assert httpx.post(task_url, json={"status": "in_progress"}, headers=crew).status_code == 200
    expect(page.locator('#timeline tr[data-step="en_route_at"]')).to_be_visible(timeout=5_000)
    response = httpx.post(f"{task_url}/milestones", json={"milestone": "on_scene"}, headers=crew)
    assert response.status_code == 200, response.text
    expect(page.locator('#timeline tr[data-step="on_scene_at"]')).to_be_visible(timeout=5_000)
    expect(page.locator("#incident-header [data-target]")).to_have_attribute("data-target", "met")
    shot(page, "shift-02-incident-live-1440")

    # Another task is cancelled with a reason.
    page.goto(f"{server.url}/admin/tasks/emergencytask/{other.pk}/incident/")
    page.fill("#id_reason", "Caller called back: no longer needed")
    page.click("#cancel-form button[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Cancelled: Caller called back")
    other.refresh_from_db()
    assert other.status == "cancelled"
    assert other.history.last().note == "Caller called back: no longer needed"


CONSOLE_PAGES = {
    "board": "/admin/tasks/emergencytask/board/",
    "incident": None,  # the pending task's page
    "map": "/admin/tasks/emergencytask/map/",
    "week": "/admin/paramedics/shift/week/",
    "overview": "/admin/tasks/emergencytask/overview/",
    "tasks": "/admin/tasks/emergencytask/",
    "roster": "/admin/paramedics/paramedic/",
    "outbox": "/admin/integrations/outboxevent/",
    "index": "/admin/",
}
# The pages a dispatcher may open on a tablet or a phone (design §19).
SMALL_SCREEN_PAGES = ("board", "incident", "map", "week")


def test_console_pages_fit_small_screens_and_pass_axe(server, browser):
    _, _, task = a_shift()
    pages = {**CONSOLE_PAGES, "incident": f"/admin/tasks/emergencytask/{task.pk}/incident/"}
    page = log_in(browser, server, "/admin/")
    blocking, sideways = {}, []
    for name, url in pages.items():
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(f"{server.url}{url}")
        page.wait_for_load_state("load")
        if name in SMALL_SCREEN_PAGES:
            shot(page, f"console-{name}-1440")
            for width in (768, 390):
                if scrolls_sideways(page, width):
                    sideways.append(f"{name} at {width} px")
            shot(page, f"console-{name}-390")
            page.set_viewport_size({"width": 1440, "height": 900})
        else:
            # Lists fit 1440 px: nothing cut off in the changelist's table.
            assert not page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth"), (
                f"{name} scrolls sideways at 1440 px"
            )
        if name == "map":
            # Labelled markers, updated live: a new call shows without a reload.
            expect(page.locator(".map-label", has_text="call-other")).to_be_visible()
            TaskFactory(request_id="call-on-the-map", lat=52.53, lon=13.41)
            expect(page.locator(".map-label", has_text="call-on-the-map")).to_be_visible(
                timeout=5_000
            )
        blocking[name] = axe_violations(page, name)
    assert sideways == []
    assert {name: v for name, v in blocking.items() if v} == {}
