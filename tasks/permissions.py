from rest_framework.permissions import BasePermission

from core.roles import is_service, is_supervisor, paramedic_of


class CanSubmitTasks(BasePermission):
    """Services and supervisors: intake, their task lists, cancelling."""

    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user) or is_service(request.user)


class CanReadTask(BasePermission):
    """Supervisors, services and paramedics; the queryset narrows it to their tasks."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return is_supervisor(user) or is_service(user) or paramedic_of(user) is not None
