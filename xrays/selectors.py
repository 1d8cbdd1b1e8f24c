from django.db.models import QuerySet

from core.roles import is_doctor, is_supervisor, paramedic_of
from paramedics.models import Paramedic

from .models import XrayImage, XrayUploadSession


def xrays_visible_to(user) -> QuerySet[XrayImage]:
    """Supervisors and doctors: all X-rays; a paramedic: its own; others none."""
    xrays = XrayImage.objects.all()
    if is_supervisor(user) or is_doctor(user):
        return xrays
    me = paramedic_of(user)
    return xrays.filter(paramedic=me) if me else xrays.none()


def paramedics_with_visible_xrays(user) -> QuerySet[Paramedic]:
    """Whose X-ray lists the caller may open (a doctor reviews any paramedic's)."""
    if is_supervisor(user) or is_doctor(user):
        return Paramedic.objects.all()
    me = paramedic_of(user)
    return Paramedic.objects.filter(pk=me.pk) if me else Paramedic.objects.none()


def pacs_rendered_url(xray: XrayImage) -> str:
    """The WADO-RS rendered preview of the instance the PACS stored ("" if none)."""
    return f"{xray.pacs_retrieve_url}/rendered" if xray.pacs_retrieve_url else ""


def upload_sessions_visible_to(user) -> QuerySet[XrayUploadSession]:
    """Supervisors: every upload session; a paramedic: its own; others none."""
    sessions = XrayUploadSession.objects.select_related("xray")
    if is_supervisor(user):
        return sessions
    me = paramedic_of(user)
    return sessions.filter(paramedic=me) if me else sessions.none()
