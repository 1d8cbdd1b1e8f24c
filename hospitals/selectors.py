from django.db.models import QuerySet

from core.roles import hospital_id_of, is_supervisor, paramedic_of

from .models import Handoff


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
