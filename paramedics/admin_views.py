"""The roster's pages inside the admin (supervisors only): the week view of coverage."""

from datetime import date, timedelta

from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils import timezone

from .selectors import week_coverage

WEEK_DAYS = 7


def _week_start(request) -> date:
    """?start=YYYY-MM-DD (any day), else today (the console's zone)."""
    today = timezone.localdate()
    raw = request.GET.get("start")
    if not raw:
        return today
    try:
        start = date.fromisoformat(raw)
    except ValueError:
        messages.warning(request, f"{raw[:20]!r} is not a date (YYYY-MM-DD): showing this week.")
        return today
    if not date(2000, 1, 1) <= start <= date(9000, 1, 1):
        messages.warning(request, "That week is out of range: showing this week.")
        return today
    return start


def week_view(model_admin, request):
    start = _week_start(request)
    days = [start + timedelta(days=i) for i in range(WEEK_DAYS)]
    zone = timezone.get_current_timezone()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Coverage, week of {start:%a %d %b %Y} ({zone.key})",
        "days": days,
        "rows": week_coverage(start=start, days=WEEK_DAYS, zone=zone),
        "previous": (start - timedelta(days=WEEK_DAYS)).isoformat(),
        "next": (start + timedelta(days=WEEK_DAYS)).isoformat(),
        "today": timezone.localdate(),
    }
    return TemplateResponse(request, "admin/paramedics/shift/week.html", context)
