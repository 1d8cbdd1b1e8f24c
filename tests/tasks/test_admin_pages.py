"""The dispatch board and overview pages in the admin."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from tasks.models import EmergencyTask, TaskStatus
from tasks.selectors import plan_targets, response_targets, response_times
from tasks.services import task_cancel, task_change_status, task_record_milestone
from tests.factories import ParamedicFactory, StationFactory, TaskFactory, UserFactory, put_on_task

BOARD = reverse("admin:tasks_board")
OVERVIEW = reverse("admin:tasks_overview")


def test_the_board_shows_active_tasks_by_status_most_urgent_first(console_client, paramedic):
    routine = TaskFactory(request_id="routine-1", priority="routine")
    critical = TaskFactory(request_id="critical-1", priority="critical")
    put_on_task(paramedic, request_id="assigned-1")
    done = TaskFactory(request_id="done-1")
    task_change_status(
        task_id=done.pk,
        to_status="cancelled",
        actor=done.created_by,
        allowed_moves=frozenset({"cancel"}),
    )

    html = console_client.get(BOARD).content.decode()

    assert html.index("critical-1") < html.index("routine-1")  # priority before age
    assert html.index("Pending (2)") < html.index("critical-1") < html.index("Assigned (1)")
    assert html.index("Assigned (1)") < html.index("assigned-1")
    assert "done-1" not in html
    assert routine and critical


def test_the_board_shows_each_active_tasks_latest_milestone_and_its_age(
    console_client, paramedic, other_paramedic
):
    on_scene = put_on_task(paramedic, request_id="on-scene-1", assigned_ago=timedelta(minutes=15))
    task_change_status(
        task_id=on_scene.pk,
        to_status="in_progress",
        actor=paramedic.user,
        at=timezone.now() - timedelta(minutes=10),
    )
    task_record_milestone(
        task_id=on_scene.pk,
        milestone="on_scene",
        actor=paramedic.user,
        at=timezone.now() - timedelta(minutes=4),
    )
    put_on_task(other_paramedic, request_id="no-milestone-1")

    html = console_client.get(BOARD).content.decode()
    cards = {
        chunk.split('"', 1)[0]: chunk for chunk in html.split('data-task="')[1:]
    }  # request id -> its card (up to the next card)

    assert 'data-milestone="on_scene">On scene · 4' in cards["on-scene-1"]
    assert "data-milestone" not in cards["no-milestone-1"]


def test_assigning_from_the_board_uses_the_service_and_the_admin_log(
    console_client, supervisor, db
):
    near = ParamedicFactory(
        badge_number="NEAR", last_lat=52.52, last_lon=13.405, last_location_at=timezone.now()
    )
    task = TaskFactory(lat=52.52, lon=13.40)

    response = console_client.post(reverse("admin:tasks_board_assign", args=[task.pk]))

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.paramedic_id) == (TaskStatus.ASSIGNED, near.pk)
    assert task.history.last().actor == supervisor
    entry = LogEntry.objects.get(object_id=str(task.pk))
    assert "from the board" in entry.get_change_message()
    # A second try on the same task is refused with a message, not an error page.
    again = console_client.post(reverse("admin:tasks_board_assign", args=[task.pk]), follow=True)
    assert again.status_code == 200
    assert "cannot go from assigned" in again.content.decode()


def test_the_boards_picker_names_its_recommendation_and_why(console_client, db):
    """The issue's case: a cardiac arrest with an EMT 3.7 km away, a paramedic 11 km
    away, and an EMR 29.6 km away that the old "Nearest available" picked."""
    now = timezone.now()
    task = TaskFactory(
        request_id="arrest-1",
        call_type="cardiac_arrest",
        priority="critical",
        lat=52.5060,
        lon=13.3000,
    )
    for badge, level, north_km in (
        ("DEMO-023", "emr", 29.6),
        ("DEMO-016", "emt", 3.7),
        (
            "DEMO-014",
            "paramedic",
            11.0,
        ),
    ):
        ParamedicFactory(
            badge_number=badge,
            certification_level=level,
            last_lat=task.lat + north_km / 111.195,
            last_lon=task.lon,
            last_location_at=now,
        )

    html = console_client.get(BOARD).content.decode()
    card = html.split('data-task="arrest-1"')[1]

    default = card.split("<option", 2)[1]
    assert 'value="">Recommended: DEMO-016 ' in default
    assert "emt, about 5 min, meets the target" in default
    assert "qualified responder 10 min further: consider an intercept (DEMO-014" in default
    options = card.split("<option")[2:]
    assert "1. DEMO-016" in options[0] and "· emt · ETA 5 min (estimate, 3.7 km)" in options[0]
    assert "meets target · below_plan" in options[0]
    assert "2. DEMO-014" in options[1] and "misses target · misses_target" in options[1]
    assert "3. DEMO-023" in options[2]
    assert 'data-recommended="DEMO-016"' in card
    assert "Cardiac arrest, target 8 min. Why: arrives in about 5 min" in card

    # The default choice assigns whom it names.
    console_client.post(reverse("admin:tasks_board_assign", args=[task.pk]))
    task.refresh_from_db()
    assert task.paramedic.badge_number == "DEMO-016"


def test_the_overview_reports_the_share_within_each_plans_target(console_client, db):
    now = timezone.now()
    called = now - timedelta(hours=1)
    # (call type, priority, minutes to on scene): arrest 8 min, fall (urgent) 20 min.
    for i, (call_type, priority, minutes) in enumerate(
        [
            ("cardiac_arrest", "critical", 7),
            ("cardiac_arrest", "critical", 8),
            ("cardiac_arrest", "critical", 9),
            ("fall", "urgent", 19),
            ("fall", "urgent", -1),  # a device clock behind: left out
        ]
    ):
        task = put_on_task(
            ParamedicFactory(), request_id=f"p-{i}", call_type=call_type, priority=priority
        )
        EmergencyTask.objects.filter(pk=task.pk).update(
            created_at=called, on_scene_at=called + timedelta(minutes=minutes)
        )
    TaskFactory(call_type="stroke")  # not on scene: not counted

    figures = plan_targets(now - timedelta(hours=6), now)

    assert [(f["call_type"], f["total"], f["met"], f["dropped"], f["share"]) for f in figures] == [
        ("cardiac_arrest", 3, 2, 0, pytest.approx(2 / 3)),
        ("fall", 1, 1, 1, 1.0),
    ]
    html = console_client.get(OVERVIEW).content.decode()
    assert (
        '<tr data-call-type="cardiac_arrest"><th>Cardiac arrest</th><td>3</td><td>2</td>'
        "<td>67 %</td>"
    ) in html


# A fixed shift, in minutes after each call: (priority, assigned, en route, on scene,
# transporting, at destination); None where a milestone was skipped.
SHIFT = [
    ("critical", 1, 2, 7, 20, 35),
    ("critical", 2, 4, 12, 25, 40),
    ("urgent", 1, 3, 8, None, None),
    ("urgent", 3, 5, 9, 30, 50),
    ("routine", 5, 9, 15, 30, 45),
    ("routine", 2, None, 10, None, None),
]


def _worked_shift(now):
    called = now - timedelta(hours=2)
    fields = ("assigned_at", "en_route_at", "on_scene_at", "transporting_at", "at_destination_at")
    for i, (priority, *minutes) in enumerate(SHIFT):
        task = put_on_task(ParamedicFactory(), request_id=f"t-{i}", priority=priority)
        times = {
            name: called + timedelta(minutes=m)
            for name, m in zip(fields, minutes, strict=True)
            if m is not None
        }
        EmergencyTask.objects.filter(pk=task.pk).update(created_at=called, **times)
    # Outside the period: must not count.
    old = put_on_task(ParamedicFactory(), request_id="yesterday", priority="critical")
    EmergencyTask.objects.filter(pk=old.pk).update(
        created_at=now - timedelta(hours=30), on_scene_at=now - timedelta(hours=29)
    )
    TaskFactory(request_id="waiting-long")


def test_the_overview_computes_intervals_from_milestones(console_client, db):
    now = timezone.now()
    _worked_shift(now)
    minutes = lambda m: None if m is None else timedelta(minutes=m)  # noqa: E731

    figures = {
        f["label"]: (f["count"], f["median"], f["p90"])
        for f in response_times(now - timedelta(hours=24), now)
    }
    # Nearest rank: the ceil(n/2)-th and ceil(0.9 n)-th of the sorted intervals, by hand.
    assert figures == {
        # 1 1 2 2 3 5
        "Call to assignment": (6, minutes(2), minutes(5)),
        # 1 2 2 2 4
        "Assigned to en route": (5, minutes(2), minutes(4)),
        # 6 6 7 8 10 10
        "Assigned to on scene": (6, minutes(7), minutes(10)),
        # 13 13 15 21
        "On scene": (4, minutes(13), minutes(21)),
        # 15 15 15 20
        "Transport": (4, minutes(15), minutes(20)),
        # 7 8 9 10 12 15
        "Call to on scene (response time)": (6, minutes(9), minutes(15)),
    }
    targets = response_targets(now - timedelta(hours=24), now, timedelta(minutes=9))
    assert [(t["priority"], t["total"], t["met"], t["share"]) for t in targets] == [
        ("critical", 2, 1, 0.5),
        ("urgent", 2, 2, 1.0),  # 9 minutes is within a 9-minute target
        ("routine", 2, 0, 0.0),
    ]

    html = console_client.get(OVERVIEW, {"hours": 24}).content.decode()
    assert 'data-status="assigned"><b>7</b>' in html
    assert "Assigned to on scene" in html and "7 min 0 s" in html
    assert '<tr data-priority="critical"><th>critical</th><td>2</td><td>1</td><td>50 %' in html
    assert "waiting-long" in html
    assert "<svg" in html


def test_the_overview_never_counts_a_negative_interval(console_client, db):
    """Data from before the bound on device times (or a clock far off): on scene before
    the call and en route before the assignment. Left out of every figure, never a
    fast response that meets the target, and reported as left out."""
    now = timezone.now()
    _worked_shift(now)
    called = now - timedelta(hours=2)
    for request_id, priority in (("early-1", "critical"), ("early-2", "critical")):
        task = put_on_task(ParamedicFactory(), request_id=request_id, priority=priority)
        EmergencyTask.objects.filter(pk=task.pk).update(
            created_at=called,
            assigned_at=called + timedelta(minutes=1),
            en_route_at=called - timedelta(minutes=20),
            on_scene_at=called - timedelta(minutes=10),
        )

    figures = {f["label"]: f for f in response_times(now - timedelta(hours=24), now)}
    # The same figures as the worked shift alone (above), and the two left out.
    assert (
        figures["Assigned to en route"]["count"],
        figures["Assigned to en route"]["dropped"],
    ) == (5, 2)
    assert figures["Assigned to en route"]["median"] == timedelta(minutes=2)
    response = figures["Call to on scene (response time)"]
    assert (response["count"], response["dropped"], response["median"]) == (
        6,
        2,
        timedelta(minutes=9),
    )
    targets = response_targets(now - timedelta(hours=24), now, timedelta(minutes=9))
    assert [(t["priority"], t["total"], t["met"], t["dropped"]) for t in targets] == [
        ("critical", 2, 1, 2),
        ("urgent", 2, 2, 0),
        ("routine", 2, 0, 0),
    ]
    html = console_client.get(OVERVIEW, {"hours": 24}).content.decode()
    assert (
        '<tr data-priority="critical"><th>critical</th><td>2</td><td>1</td><td>50 %</td>'
        '<td data-dropped="2">2</td>'
    ) in html


# Session, user, its groups, tasks per hour, the user's and its groups' permissions,
# counts by status, then for each of the 6 response intervals a COUNT(*) of its tasks
# (its median and 90th percentile are read by one ORDER BY ... OFFSET query each
# only when there are tasks to pick from: none here), the target shares by
# priority (one grouped query), the shares per call type (its distinct targets, one
# grouped query), the 10 longest waiting, and the hospitals with offloaded handoffs in
# the period (design §21; each one's offload figures then take 2 to 4 queries: none here).
OVERVIEW_QUERIES = 3 + 1 + 2 + 1 + 6 + 1 + 2 + 1 + 1


def test_the_overview_queries_do_not_grow_with_tasks(console_client, db, django_assert_num_queries):
    TaskFactory.create_batch(3)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        console_client.get(OVERVIEW)
    TaskFactory.create_batch(30)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        console_client.get(OVERVIEW)


@pytest.mark.parametrize("url", [BOARD, OVERVIEW])
def test_staff_without_the_group_may_not_open_dispatch_pages(client, db, url):
    client.force_login(UserFactory(username="clerk", is_staff=True))
    assert client.get(url).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Dispatch board" not in index


class TestDispatchMap:
    """design §14: stations, available paramedics by location age, active tasks."""

    URL = "/admin/tasks/emergencytask/map/"

    def test_it_lists_what_the_map_shows(self, console_client, settings, db):
        settings.MAP_TILE_URL = ""  # no tiles at all: the markers are the map
        now = timezone.now()
        StationFactory(code="MITTE")
        for badge, minutes in (("F-1", 1), ("A-1", 10), ("S-1", 60)):
            ParamedicFactory(
                badge_number=badge,
                base_station="MITTE",
                last_lat=52.5,
                last_lon=13.4,
                last_location_at=now - timedelta(minutes=minutes),
            )
        ParamedicFactory(badge_number="OFF-1", base_station="MITTE", status="off_duty")
        pending = TaskFactory(request_id="map-1")
        done = TaskFactory(request_id="map-2")
        task_cancel(task_id=done.pk, actor=done.created_by, reason="called back")

        response = console_client.get(self.URL)

        assert response.status_code == 200
        markers = response.context["markers"]
        assert [(p["badge"], p["age"]) for p in markers["paramedics"]] == [
            ("A-1", "ageing"),
            ("F-1", "fresh"),
            ("S-1", "stale"),
        ]
        assert [s["code"] for s in markers["stations"]] == ["MITTE"]
        assert [t["request_id"] for t in markers["tasks"]] == [pending.request_id]
        html = response.content.decode()
        assert "/static/vendor/leaflet/leaflet.js" in html
        assert 'data-tile-url=""' in html

    def test_leaflet_is_served_locally(self, console_client, db):
        response = console_client.get("/static/vendor/leaflet/leaflet.js")
        assert response.status_code == 200
        assert b"Leaflet" in b"".join(response.streaming_content)[:2000]

    def test_its_queries_do_not_grow(self, console_client, django_assert_num_queries, db):
        def add(count):
            for _ in range(count):
                ParamedicFactory(last_lat=52.5, last_lon=13.4, last_location_at=timezone.now())
                TaskFactory()

        # Session, user, its groups (supervisor check), stations, available paramedics,
        # active tasks, the user's and its groups' permissions (the admin's sidebar).
        add(1)
        with django_assert_num_queries(8):
            console_client.get(self.URL)
        add(10)
        with django_assert_num_queries(8):
            console_client.get(self.URL)

    def test_it_is_for_supervisors_only(self, client, db):
        client.force_login(UserFactory(username="staff-only", is_staff=True))
        assert client.get(self.URL).status_code == 403
