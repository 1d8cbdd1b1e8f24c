"""The admin console: access follows the roles (DESIGN §4), input is validated (§16)."""

from contextlib import nullcontext

from django.contrib.admin.options import IncorrectLookupParameters
from django.db import DatabaseError, transaction

from core.roles import is_supervisor

# What a hostile or careless changelist query string can make the database layer
# raise (a year past 9999, an offset PostgreSQL refuses, a value of the wrong type).
UNREPRESENTABLE_LOOKUP = (ValueError, OverflowError, TypeError, DatabaseError)


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

    def get_changelist_instance(self, request):
        """Filters the database cannot represent are "incorrect lookup parameters":
        the admin answers them as it does unknown ones (the list with ?e=1), not 500.

        The list is built, and its first queries run, inside a savepoint when a
        transaction is open, so a refused query leaves that transaction usable.
        """
        # A savepoint only inside a transaction (tests; ATOMIC_REQUESTS): in autocommit a
        # refused query leaves nothing behind.
        in_transaction = transaction.get_connection().in_atomic_block
        try:
            with transaction.atomic() if in_transaction else nullcontext():
                return super().get_changelist_instance(request)
        except UNREPRESENTABLE_LOOKUP as exc:
            raise IncorrectLookupParameters(exc) from None


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
