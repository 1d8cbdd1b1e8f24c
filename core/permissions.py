"""DRF permission classes shared by several apps, in the terms of design §4.

They answer "may this role use the endpoint at all" (403 otherwise); which
objects a caller sees is decided by each app's `*_visible_to` selectors, so
another paramedic's object is a 404 by construction.
"""

from rest_framework.permissions import BasePermission

from .roles import is_doctor, is_supervisor, paramedic_of


class IsSupervisor(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user)


class IsSupervisorOrParamedic(BasePermission):
    """Supervisors, or a paramedic (object scoping then limits it to itself)."""

    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user) or paramedic_of(request.user) is not None


class IsParamedic(BasePermission):
    """A paramedic acting as itself (a device); the view limits it to its own profile."""

    def has_permission(self, request, view) -> bool:
        return paramedic_of(request.user) is not None


class CanReadXrays(BasePermission):
    """Supervisors, doctors and paramedics; scoping limits a paramedic to its own."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return is_supervisor(user) or is_doctor(user) or paramedic_of(user) is not None
