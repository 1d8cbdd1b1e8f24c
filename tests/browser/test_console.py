"""The supervisor console in a real browser: Debian's Chromium driven by Playwright.

A supervisor logs in, finds an available paramedic on the roster, assigns a
pending task from the dispatch board, sees the board change, and opens the
overview. Screenshots are saved under var/screenshots/ as test artifacts.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, shot
from tests.factories import ParamedicFactory, TaskFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server):
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes between browser steps are ordinary synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_a_supervisor_runs_a_dispatch_from_the_console(page, live_server):
    UserFactory(
        username="shift-lead",
        password="shift-lead-password-1",
        is_staff=True,
        groups=["supervisors"],
    )
    medic = ParamedicFactory(
        badge_number="M-42",
        first_name="Ada",
        last_name="Nearby",
        last_lat=52.521,
        last_lon=13.41,
        last_location_at=timezone.now(),
    )
    ParamedicFactory(badge_number="M-99", status="off_duty")
    TaskFactory(
        request_id="call-777",
        priority="critical",
        lat=52.52,
        lon=13.405,
        address="Alexanderplatz 1",
    )

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "shift-lead")
    page.fill("#id_password", "shift-lead-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#dispatch-links")
    shot(page, "01-admin-index")

    page.goto(f"{live_server.url}/admin/paramedics/paramedic/?status__exact=available")
    roster = page.locator("#result_list")
    assert "M-42" in roster.inner_text()
    assert "M-99" not in roster.inner_text()
    assert page.locator('.status-badge[data-status="available"]').count() == 1
    shot(page, "02-roster-available")

    page.goto(f"{live_server.url}/admin/")
    page.click("#dispatch-links >> text=Dispatch board")
    pending = page.locator('[data-column="pending"]')
    assert "call-777" in pending.inner_text()
    card = page.locator('.card[data-task="call-777"]')
    assert "M-42" in card.locator("select").inner_text()  # ranked candidate offered
    shot(page, "03-board-before")

    card.locator("select").select_option(label=card.locator("option").nth(1).inner_text())
    card.locator("button[type=submit]").click()
    page.wait_for_selector(".messagelist")
    assert "assigned to M-42" in page.locator(".messagelist").inner_text()
    assert "call-777" in page.locator('[data-column="assigned"]').inner_text()
    assert "call-777" not in page.locator('[data-column="pending"]').inner_text()
    shot(page, "04-board-after")

    medic.refresh_from_db()
    assert medic.status == "on_task"

    page.goto(f"{live_server.url}/admin/tasks/emergencytask/overview/?hours=6")
    assert page.locator('.tile[data-status="assigned"] b').inner_text() == "1"
    assert page.locator("svg.chart rect").count() >= 6
    shot(page, "05-overview")


def test_chromium_is_the_systems_not_a_download():
    assert shutil.which("chromium") or Path(CHROMIUM).exists()


def test_the_overview_and_board_with_the_demo_shift(page, live_server):
    """Field time (design §17) as a supervisor sees it, on seed_demo's realistic shift."""
    call_command("seed_demo", password="demo-pass-123456")

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "demo-supervisor")
    page.fill("#id_password", "demo-pass-123456")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/tasks/emergencytask/overview/?hours=24")
    figures = page.locator("table.figures").first.inner_text()
    for label in ("Assigned to en route", "Assigned to on scene", "On scene", "Transport"):
        assert label in figures
    targets = page.locator("table.targets")
    assert targets.locator("tr[data-priority]").count() == 3
    assert "%" in targets.inner_text()
    shot(page, "06-overview-demo")

    page.goto(f"{live_server.url}/admin/tasks/emergencytask/board/")
    assert page.locator("[data-column='in-progress'] .milestone").count() >= 1
    shot(page, "07-board-demo")


def test_the_board_follows_an_assignment_made_through_the_api(settings):
    """The board, open in Chromium on the ASGI server, moves a card by itself."""
    import httpx
    from playwright.sync_api import expect, sync_playwright
    from rest_framework_simplejwt.tokens import AccessToken

    from tests.server.sse import AsgiServer

    settings.LIVE_POLL_SECONDS = 0.2
    settings.LIVE_HEARTBEAT_SECONDS = 1
    supervisor = UserFactory(
        username="board-lead",
        password="board-lead-password-1",
        is_staff=True,
        groups=["supervisors"],
    )
    medic = ParamedicFactory(
        badge_number="M-7", last_lat=52.5, last_lon=13.4, last_location_at=timezone.now()
    )
    task = TaskFactory(request_id="call-live", lat=52.5, lon=13.4)
    server = AsgiServer()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/admin/login/?next=/admin/tasks/emergencytask/board/")
            page.fill("#id_username", "board-lead")
            page.fill("#id_password", "board-lead-password-1")
            page.click("input[type=submit]")
            expect(page.locator("#live-status")).to_have_attribute("data-live", "open")
            assert "call-live" in page.locator('[data-column="pending"]').inner_text()
            page.evaluate("window.notReloaded = true")

            response = httpx.post(
                f"{server.url}/api/v1/tasks/{task.id}/assign",
                json={"paramedic": str(medic.id)},
                headers={"Authorization": f"Bearer {AccessToken.for_user(supervisor)}"},
            )
            assert response.status_code == 200, response.text

            assigned = page.locator('[data-column="assigned"]')
            expect(assigned).to_contain_text("call-live", timeout=5_000)
            expect(page.locator('[data-column="pending"]')).not_to_contain_text("call-live")
            assert page.evaluate("window.notReloaded") is True  # updated in place
            shot(page, "08-board-live")

            # No longer a supervisor: the board's stream ends, and the page says so.
            supervisor.groups.clear()
            expect(page.locator("#live-status")).to_have_attribute("data-live", "closed")
            assert page.locator("#live-status").get_attribute("data-reason") == "permission_denied"
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        server.stop()
