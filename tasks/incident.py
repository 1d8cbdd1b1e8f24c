"""The incident page (design §19): the supervisor's default view of one task.

It reads through tasks.selectors and tasks.dispatch and changes state only through
tasks.services (assign, reassign, cancel, change priority), like the API; each change
is written to the admin log. The raw model form stays one click away.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from core.errors import ApplicationError
from paramedics.selectors import location_trail

from .dispatch import rank_candidates
from .models import EmergencyTask, TaskPriority, TaskStatus
from .selectors import incident_timeline
from .services import task_assign, task_cancel, task_change_priority, task_reassign
from .streams import STREAMED_KINDS

INCIDENT_CANDIDATES = 5
# The assignee's trail on the map: its fixes since the assignment, at most this far back.
TRAIL_WINDOW = timedelta(minutes=60)
TRAIL_MAX_FIXES = 500
# Fixes a device timed a little ahead of the server's clock still belong to "now".
TRAIL_AHEAD = timedelta(minutes=2)
OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)


class IncidentAssignForm(forms.Form):
    """Assign or reassign: a candidate's id, or none for the top candidate."""

    paramedic = forms.UUIDField(required=False)


class IncidentCancelForm(forms.Form):
    reason = forms.CharField(max_length=1000)


class IncidentPriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=TaskPriority.choices)


def incident_url(task) -> str:
    return reverse("admin:tasks_incident", args=[task.pk])


def incident_view(model_admin, request, task_id):
    task = get_object_or_404(
        EmergencyTask.objects.select_related("paramedic", "call_type", "created_by"), pk=task_id
    )
    now = timezone.now()
    history = list(task.history.select_related("actor", "paramedic"))
    xrays = list(task.xrays.order_by("created_at"))
    # Candidates to assign a pending task to, or to reassign one not yet started to.
    candidates = []
    if task.status in (TaskStatus.PENDING, TaskStatus.ASSIGNED):
        candidates = rank_candidates(task, limit=INCIDENT_CANDIDATES)
        if task.paramedic_id is not None:
            candidates = [c for c in candidates if c.paramedic.pk != task.paramedic_id]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Incident {task.request_id}",
        "task": task,
        "now": now,
        "timeline": incident_timeline(task, now=now),
        "history": history,
        "xrays": xrays,
        "candidates": candidates,
        "is_open": task.status in OPEN_STATUSES,
        "may_reassign": task.status == TaskStatus.ASSIGNED,
        "priorities": TaskPriority.choices,
        "map": _incident_map(task, candidates, now=now),
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "stream_kinds": [str(kind) for kind in STREAMED_KINDS],
        "raw_url": reverse("admin:tasks_emergencytask_change", args=[task.pk]),
    }
    return TemplateResponse(request, "admin/tasks/incident.html", context)


def _incident_map(task: EmergencyTask, candidates, *, now) -> dict:
    """The task, its assignee with the recent trail (while the task is active) and
    the candidates, as the page's map draws them."""
    assignee, trail = None, []
    person = task.paramedic
    if person is not None and task.status in (TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS):
        since = max(task.assigned_at or task.created_at, now - TRAIL_WINDOW)
        fixes = location_trail(person, since=since, until=now + TRAIL_AHEAD)
        trail = [[fix.lat, fix.lon] for fix in fixes.only("lat", "lon", "at")[:TRAIL_MAX_FIXES]]
        if person.last_lat is not None:
            assignee = {
                "badge": person.badge_number,
                "name": person.full_name,
                "lat": person.last_lat,
                "lon": person.last_lon,
            }
    return {
        "task": {
            "request_id": task.request_id,
            "priority": task.priority,
            "lat": task.lat,
            "lon": task.lon,
        },
        "assignee": assignee,
        "trail": trail,
        "candidates": [
            {
                "badge": c.paramedic.badge_number,
                "name": c.paramedic.full_name,
                "lat": c.paramedic.last_lat,
                "lon": c.paramedic.last_lon,
                "eta_minutes": c.eta_minutes,
                "meets_target": c.meets_target,
                "rank": c.rank,
            }
            for c in candidates
        ],
    }


def _act(model_admin, request, task_id, form_class, change):
    """POST only: validate the form, run `change(task, data)` (a service call that
    returns the task and the admin log message), show a refusal as a warning, and go
    back to the incident page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task = get_object_or_404(EmergencyTask.objects.only("id", "request_id", "status"), pk=task_id)
    form = form_class(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        messages.error(request, f"{task.request_id}: {problems}")
        return redirect(incident_url(task))
    try:
        task, log_message = change(task, form.cleaned_data)
    except ApplicationError as exc:
        messages.warning(request, f"{task.request_id}: {exc.detail}")
    else:
        model_admin.log_change(request, task, log_message)
        messages.success(request, f"{task.request_id}: {log_message}.")
    return redirect(incident_url(task))


def incident_assign_view(model_admin, request, task_id):
    def assign(task, data):
        # Assign or reassign by the status read here; the service checks it again
        # under the row lock and refuses if it changed meanwhile.
        if task.status == TaskStatus.ASSIGNED:
            task = task_reassign(
                task_id=task.pk, actor=request.user, paramedic_id=data["paramedic"]
            )
            return task, f"Reassigned to {task.paramedic} from the incident page"
        task = task_assign(task_id=task.pk, actor=request.user, paramedic_id=data["paramedic"])
        return task, f"Assigned to {task.paramedic} from the incident page"

    return _act(model_admin, request, task_id, IncidentAssignForm, assign)


def incident_cancel_view(model_admin, request, task_id):
    def cancel(task, data):
        task = task_cancel(task_id=task.pk, actor=request.user, reason=data["reason"])
        return task, f"Cancelled: {data['reason']}"

    return _act(model_admin, request, task_id, IncidentCancelForm, cancel)


def incident_priority_view(model_admin, request, task_id):
    def change_priority(task, data):
        task = task_change_priority(task_id=task.pk, actor=request.user, priority=data["priority"])
        return task, f"Priority set to {task.priority} (target {task.target_minutes} min)"

    return _act(model_admin, request, task_id, IncidentPriorityForm, change_priority)
