import uuid
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core.roles import is_supervisor, paramedic_of

from .models import Paramedic, Shift, ShiftAssignment


def paramedics_visible_to(user) -> QuerySet[Paramedic]:
    """Supervisors see the roster; a paramedic sees itself; others nothing.

    Scoping (rather than a 403) makes another paramedic's profile a 404.
    """
    paramedics = Paramedic.objects.all()
    if is_supervisor(user):
        return paramedics
    me = paramedic_of(user)
    return paramedics.filter(pk=me.pk) if me else paramedics.none()


def paramedic_visible_to(user, paramedic_id) -> Paramedic:
    """The paramedic named in a URL, if the caller may act on it; else 404.

    A paramedic addressing itself is answered from the profile already loaded
    with its user (no query), the common case for devices polling their tasks.
    """
    me = paramedic_of(user)
    if me is not None and not is_supervisor(user):
        try:
            if uuid.UUID(str(paramedic_id)) == me.pk:
                return me
        except ValueError:
            pass
        raise Http404("No such paramedic.")
    return get_object_or_404(paramedics_visible_to(user), pk=paramedic_id)


# --- Rosters (DESIGN §14) ----------------------------------------------------------


def covering(at: datetime) -> Q:
    """ShiftAssignment rows whose shift runs at `at` (half-open: [starts_at, ends_at))."""
    return Q(starts_at__lte=at, ends_at__gt=at)


def on_shift_expression(at: datetime) -> Exists:
    """For Paramedic querysets: the paramedic has a shift running at `at`."""
    return Exists(ShiftAssignment.objects.filter(covering(at), paramedic_id=OuterRef("pk")))


def has_shifts_expression() -> Exists:
    """For Paramedic querysets: the roster plans this paramedic (it has any shift)."""
    return Exists(ShiftAssignment.objects.filter(paramedic_id=OuterRef("pk")))


def is_on_shift(paramedic: Paramedic, *, at: datetime | None = None) -> bool:
    return ShiftAssignment.objects.filter(
        covering(at or timezone.now()), paramedic_id=paramedic.pk
    ).exists()


def shifts_with_people(shifts: QuerySet[Shift]) -> QuerySet[Shift]:
    """What the API shows of shifts, in a fixed number of queries."""
    return shifts.prefetch_related(
        Prefetch("assignments", queryset=ShiftAssignment.objects.order_by("pk"))
    )


def current_and_upcoming_shifts(paramedic: Paramedic, *, now: datetime | None = None):
    """A paramedic's shifts that have not ended, soonest first."""
    return shifts_with_people(
        Shift.objects.filter(
            assignments__paramedic_id=paramedic.pk, ends_at__gt=now or timezone.now()
        ).order_by("starts_at", "pk")
    )
