from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import hospital_id_of, is_supervisor, paramedic_of


class CanKeepHospitals(BasePermission):
    """Anyone signed in reads hospitals; supervisors create and edit them; a
    hospital's staff changes its own hospital's status (the view limits the fields
    and the hospital)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if request.method in SAFE_METHODS:
            return True
        if is_supervisor(user):
            return True
        return request.method == "PATCH" and hospital_id_of(user) is not None


class IsSupervisorOrHospitalStaff(BasePermission):
    """Supervisors, or a hospital's staff (object scoping limits it to its own)."""

    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user) or hospital_id_of(request.user) is not None


class TakesPartInHandoffs(BasePermission):
    """Supervisors, hospital staff and paramedics; scoping narrows each to its own."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return (
            is_supervisor(user)
            or hospital_id_of(user) is not None
            or paramedic_of(user) is not None
        )


class IsSupervisorOrCrew(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user) or paramedic_of(request.user) is not None
