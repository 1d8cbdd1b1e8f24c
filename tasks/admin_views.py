"""The dispatch board and overview pages inside the admin (supervisors only).

Views here read through tasks.selectors and change state only through
tasks.services, exactly like the API; each change is written to the admin log.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from core.errors import ApplicationError
from paramedics.models import Paramedic, ParamedicStatus, Station
from paramedics.selectors import stations_now

from .dispatch import rank_candidates
from .models import EmergencyTask, TaskStatus
from .selectors import (
    active_board,
    plan_targets,
    response_targets,
    response_times,
    status_counts,
    tasks_per_hour,
)
from .services import task_assign
from .streams import STREAMED_KINDS
from .templatetags.console import human_duration


class BoardAssignForm(forms.Form):
    """The board's assign button: a candidate's id, or none for the top candidate."""

    paramedic = forms.UUIDField(required=False)


BOARD_CANDIDATES = 5
BOARD_PENDING_WITH_CANDIDATES = 20
OVERVIEW_PERIODS = {6: "6 hours", 24: "24 hours", 72: "3 days", 168: "7 days"}
ACTIVE_STATUSES = (TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)


def board_view(model_admin, request):
    columns = active_board()
    # Offer the ranked candidates for the first pending tasks (the ones to act on).
    for task in columns[TaskStatus.PENDING][:BOARD_PENDING_WITH_CANDIDATES]:
        task.candidates = rank_candidates(task, limit=BOARD_CANDIDATES)
    now = timezone.now()
    for column in columns.values():
        for task in column:
            task.target = task.target_state(now)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Dispatch board",
        "now": now,
        "stations": stations_now(
            now=now, stale_after=timedelta(minutes=settings.STALE_LOCATION_MINUTES)
        ),
        "alert_seconds": settings.ALERT_UNASSIGNED_SECONDS,
        "stream_kinds": [str(kind) for kind in STREAMED_KINDS],
        "columns": [
            (TaskStatus.PENDING.label, columns[TaskStatus.PENDING]),
            (TaskStatus.ASSIGNED.label, columns[TaskStatus.ASSIGNED]),
            (TaskStatus.IN_PROGRESS.label, columns[TaskStatus.IN_PROGRESS]),
        ],
    }
    return TemplateResponse(request, "admin/tasks/board.html", context)


def board_assign_view(model_admin, request, task_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task = EmergencyTask.objects.filter(pk=task_id).first()
    if task is None:
        messages.error(request, "That task no longer exists.")
        return redirect("admin:tasks_board")
    form = BoardAssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{task.request_id}: choose a paramedic from the list.")
        return redirect("admin:tasks_board")
    try:
        task = task_assign(
            task_id=task.pk, actor=request.user, paramedic_id=form.cleaned_data["paramedic"]
        )
    except ApplicationError as exc:
        messages.warning(request, f"{task.request_id}: {exc.detail}")
    else:
        model_admin.log_change(request, task, f"Assigned to {task.paramedic} from the board")
        messages.success(request, f"{task.request_id}: assigned to {task.paramedic}.")
    return redirect("admin:tasks_board")


# Sections other apps add to the overview at start-up (AppConfig.ready), since tasks
# imports none of them: a callable (start, end) -> (template name, context), rendered
# after the response figures. Hospitals adds offload times (design §21).
OverviewSection = Callable[[datetime, datetime], tuple[str, dict]]
_overview_sections: list[OverviewSection] = []


def add_overview_section(section: OverviewSection) -> None:
    if section not in _overview_sections:
        _overview_sections.append(section)


def overview_view(model_admin, request):
    try:
        hours = int(request.GET.get("hours", 24))
    except ValueError:
        hours = 24
    if hours not in OVERVIEW_PERIODS:
        hours = 24
    end = timezone.now()
    start = end - timedelta(hours=hours)
    per_hour = tasks_per_hour(start, end)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Dispatch overview",
        "hours": hours,
        "periods": OVERVIEW_PERIODS,
        "counts": [(s, TaskStatus(s).label, n) for s, n in status_counts().items()],
        "waiting_longest": EmergencyTask.objects.filter(status=TaskStatus.PENDING)
        .order_by("created_at")
        .only("id", "request_id", "priority", "address", "created_at")[:10],
        "figures": [
            {**f, "median": human_duration(f["median"]), "p90": human_duration(f["p90"])}
            for f in response_times(start, end)
        ],
        "target_minutes": settings.RESPONSE_TARGET_MINUTES,
        "targets": response_targets(
            start, end, timedelta(minutes=settings.RESPONSE_TARGET_MINUTES)
        ),
        "plan_targets": plan_targets(start, end),
        "sections": [
            render_to_string(template, {"hours": hours, **section_context})
            for template, section_context in (section(start, end) for section in _overview_sections)
        ],
        "chart": _bar_chart(per_hour, start, hours),
        "now": end,
    }
    return TemplateResponse(request, "admin/tasks/overview.html", context)


def _bar_chart(per_hour, start, hours, width=720, height=160, axis=18) -> dict:
    """Geometry of a server-rendered SVG bar chart of tasks received per hour.

    Bars stand on a baseline `axis` pixels above the bottom; about six hour labels
    are written under it.
    """
    counts = dict(per_hour)
    first = start.replace(minute=0, second=0, microsecond=0)
    slots = [first + timedelta(hours=i) for i in range(hours + 1)]
    peak = max(counts.values(), default=0) or 1
    bar_width = width / len(slots)
    baseline = height - axis
    label_every = max(1, len(slots) // 6)
    bars = []
    for i, slot in enumerate(slots):
        n = counts.get(slot, 0)
        bar_height = round((baseline - 14) * n / peak, 1)
        bars.append(
            {
                "x": round(i * bar_width, 1),
                "y": round(baseline - bar_height, 1),
                "tick": slot.strftime("%H:00") if i % label_every == 0 else "",
                "width": max(1.0, round(bar_width - 1, 1)),
                "height": bar_height,
                "count": n,
                "label": slot.strftime("%d %b %H:00"),
            }
        )
    return {
        "width": width,
        "height": height,
        "baseline": baseline,
        "label_y": height - 4,
        "bars": bars,
        "peak": peak,
    }


# The map's colours for a paramedic's location age (design §14): fresh, ageing, stale.
FRESH_LOCATION_SECONDS = 5 * 60


def _location_age_class(age_s: int, stale_after_s: int) -> str:
    if age_s <= FRESH_LOCATION_SECONDS:
        return "fresh"
    return "ageing" if age_s <= stale_after_s else "stale"


def map_view(model_admin, request):
    """Stations, available paramedics (coloured by location age) and active tasks on a
    Leaflet map. Leaflet is served locally; tiles come from MAP_TILE_URL, and without
    them (offline, or the setting empty) the markers still show on a blank map."""
    now = timezone.now()
    stale_after_s = settings.STALE_LOCATION_MINUTES * 60
    data = map_markers(now=now, stale_after_s=stale_after_s)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Dispatch map",
        "stream_kinds": [str(kind) for kind in STREAMED_KINDS],
        "markers": data,
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "fresh_minutes": FRESH_LOCATION_SECONDS // 60,
        "stale_minutes": settings.STALE_LOCATION_MINUTES,
    }
    return TemplateResponse(request, "admin/tasks/map.html", context)


def map_markers(*, now, stale_after_s: int) -> dict:
    stations = [
        {"code": s.code, "name": s.name, "lat": s.lat, "lon": s.lon, "min_staff": s.min_staff}
        for s in Station.objects.filter(lat__isnull=False).order_by("code")
    ]
    paramedics = []
    for p in Paramedic.objects.filter(
        status=ParamedicStatus.AVAILABLE, last_location_at__isnull=False
    ).order_by("badge_number"):
        age = max(0, int((now - p.last_location_at).total_seconds()))
        paramedics.append(
            {
                "badge": p.badge_number,
                "name": p.full_name,
                "station": p.base_station_code,
                "lat": p.last_lat,
                "lon": p.last_lon,
                "age_s": age,
                "age": _location_age_class(age, stale_after_s),
            }
        )
    tasks = [
        {
            "request_id": t.request_id,
            "priority": t.priority,
            "status": t.status,
            "status_label": t.get_status_display(),
            "address": t.address,
            "lat": t.lat,
            "lon": t.lon,
            "url": reverse("admin:tasks_incident", args=[t.pk]),
        }
        for t in EmergencyTask.objects.filter(status__in=ACTIVE_STATUSES).order_by("created_at")
    ]
    return {"stations": stations, "paramedics": paramedics, "tasks": tasks}
