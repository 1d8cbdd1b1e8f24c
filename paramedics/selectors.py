from django.db.models import QuerySet

from config.roles import is_supervisor, paramedic_of

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
