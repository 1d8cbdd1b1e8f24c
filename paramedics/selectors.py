import uuid

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from core.roles import is_supervisor, paramedic_of

from .models import Paramedic


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
