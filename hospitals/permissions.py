from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import hospital_id_of, is_supervisor


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
