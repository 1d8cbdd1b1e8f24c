"""The hospital board in the console (design §21): each hospital's status and the
patients coming to it, with their ETA, and the hospital's moves on them."""

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from core.errors import ApplicationError

from .handoffs import handoff_acknowledge, handoff_offload
from .models import ACTIVE_HANDOFF_STATES, Handoff, Hospital


def hospital_board_view(model_admin, request):
    incoming: dict = {}
    for handoff in (
        Handoff.objects.filter(state__in=ACTIVE_HANDOFF_STATES)
        .select_related("paramedic")
        .order_by("eta")
    ):
        incoming.setdefault(handoff.hospital_id, []).append(handoff)
    hospitals = list(Hospital.objects.order_by("code"))
    for hospital in hospitals:
        hospital.incoming = incoming.get(hospital.pk, [])
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Hospital board",
        "now": timezone.now(),
        "hospitals": hospitals,
    }
    return TemplateResponse(request, "admin/hospitals/board.html", context)


MOVES = {"acknowledge": handoff_acknowledge, "offload": handoff_offload}


def hospital_board_move_view(model_admin, request, handoff_id, move: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        handoff = MOVES[move](handoff_id=handoff_id, actor=request.user)
    except ApplicationError as exc:
        messages.warning(request, exc.detail)
    else:
        messages.success(request, f"{handoff.hospital.code}: {handoff.state}.")
    return redirect("admin:hospitals_board")
