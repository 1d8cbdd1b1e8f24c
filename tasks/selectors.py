"""Which tasks a caller may see (DESIGN §4). Views scope every query through here."""

from django.db.models import Prefetch, QuerySet

from config.roles import is_service, is_supervisor, paramedic_of

from .models import EmergencyTask, TaskHistory


def tasks_visible_to(user) -> QuerySet[EmergencyTask]:
    """Supervisors: all; services: the tasks they created; paramedics: assigned to them."""
    tasks = EmergencyTask.objects.all()
    if is_supervisor(user):
        return tasks
    if is_service(user):
        return tasks.filter(created_by=user)
    me = paramedic_of(user)
    if me is not None:
        return tasks.filter(paramedic=me)
    return tasks.none()


def with_history(tasks: QuerySet[EmergencyTask]) -> QuerySet[EmergencyTask]:
    return tasks.prefetch_related(
        Prefetch("history", queryset=TaskHistory.objects.select_related("actor"))
    )


def may_see_patient_details(user, task: EmergencyTask) -> bool:
    """Only supervisors and the paramedic assigned to the task (DESIGN §8)."""
    if is_supervisor(user):
        return True
    me = paramedic_of(user)
    return me is not None and task.paramedic_id == me.pk
