from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet

from core.roles import hospital_id_of, is_supervisor, paramedic_of
from tasks.selectors import interval, percentiles

from .models import Handoff, Hospital


def handoffs_visible_to(user) -> QuerySet[Handoff]:
    """Supervisors: all; a hospital's staff: those addressed to it; a paramedic: its own."""
    handoffs = Handoff.objects.select_related("hospital")
    if is_supervisor(user):
        return handoffs
    hospital_id = hospital_id_of(user)
    if hospital_id is not None:
        return handoffs.filter(hospital_id=hospital_id)
    me = paramedic_of(user)
    if me is not None:
        return handoffs.filter(paramedic=me)
    return handoffs.none()


def offload_times(start, end) -> list[dict]:
    """Per hospital: handoffs that arrived in [start, end) and were offloaded, their
    offload time (arrival to handover) median and 90th percentile, and the share within
    OFFLOAD_TARGET_MINUTES. A negative interval (a device's arrival time against the
    server's offload time) is left out and counted (`dropped`), as response times are.
    """
    target = timedelta(minutes=settings.OFFLOAD_TARGET_MINUTES)
    offloaded = Handoff.objects.filter(
        arrived_at__gte=start, arrived_at__lt=end, offloaded_at__isnull=False
    )
    figures = []
    for hospital in Hospital.objects.filter(handoffs__in=offloaded).distinct().order_by("code"):
        handoffs = offloaded.filter(hospital=hospital)
        count, dropped, (median, p90) = percentiles(
            handoffs, interval("arrived_at", "offloaded_at"), (0.5, 0.9)
        )
        met = (
            handoffs.annotate(offload=interval("arrived_at", "offloaded_at"))
            .filter(offload__gte=timedelta(0), offload__lte=target)
            .count()
        )
        figures.append(
            {
                "hospital": hospital,
                "count": count,
                "dropped": dropped,
                "median": median,
                "p90": p90,
                "met": met,
                "share": met / count if count else None,
            }
        )
    return figures


def _minutes(duration: timedelta | None) -> str | None:
    return None if duration is None else f"{duration.total_seconds() / 60:.0f} min"


def overview_section(start, end) -> tuple[str, dict]:
    """The dispatch overview's offload figures (tasks.admin_views.add_overview_section)."""
    figures = [
        {**f, "median": _minutes(f["median"]), "p90": _minutes(f["p90"])}
        for f in offload_times(start, end)
    ]
    return "admin/hospitals/offload_times.html", {
        "offload_times": figures,
        "offload_target_minutes": settings.OFFLOAD_TARGET_MINUTES,
    }
