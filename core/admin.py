"""Admin access follows the roles (DESIGN §4): supervisors run the console."""

from core.roles import is_supervisor


class SupervisorAdminMixin:
    """Supervisors may view, add and change; nobody deletes (records are kept)."""

    def has_module_permission(self, request) -> bool:
        return is_supervisor(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_supervisor(request.user)

    def has_add_permission(self, request, *args) -> bool:
        return is_supervisor(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_supervisor(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInlineMixin:
    """An inline that shows rows and never edits them (e.g. task history)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_supervisor(request.user)
