"""The admin console: access follows the roles (design §4), input is validated (§16)."""

from contextlib import contextmanager, nullcontext

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.template.response import TemplateResponse
from django.urls import reverse

from core.errors import ApplicationError
from core.roles import is_supervisor
from core.spreadsheets import BoundedCSV, BoundedXLSX, SpreadsheetRefused

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
        the admin answers them as it does unknown ones (the list with ?e=1), not 500."""
        with lookups_checked():
            return super().get_changelist_instance(request)


class ReadOnlyAdminMixin(SupervisorAdminMixin):
    """Records only the services write (X-rays, upload sessions, outbox events):
    supervisors look, and act through the admin's actions, never through the form."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SupervisorPagesMixin:
    """For a ModelAdmin with pages of its own (get_urls): `supervisor_page(view)` wraps
    one as the admin's own views are (login, CSRF, never cached) and lets only
    supervisors in; admin_view alone lets in any staff user."""

    def supervisor_page(self, view):
        def supervisors_only(request, *args, **kwargs):
            if not is_supervisor(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return self.admin_site.admin_view(supervisors_only)


def add_service_errors(form, refusal: ApplicationError, *, field: str | None = None) -> None:
    """Show a service's refusal on an admin form: its field errors on their fields
    (a field the form does not have: on the form), or its detail on `field`. The
    rule stays in the service; the form only asks it."""
    if not refusal.errors:
        form.add_error(field, refusal.detail)
        return
    for name, problems in refusal.errors.items():
        messages = [p["message"] for p in problems if isinstance(p, dict) and "message" in p]
        form.add_error(name if name in form.fields else None, messages or refusal.detail)


@contextmanager
def lookups_checked():
    """Run a changelist's filters (building it, its first queries) so that what the
    database cannot represent is IncorrectLookupParameters, as an unknown filter is.

    Inside a savepoint when a transaction is open, so a refused query leaves that
    transaction usable; in autocommit a refused query leaves nothing behind.
    """
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else nullcontext():
            yield
    except UNREPRESENTABLE_LOOKUP as exc:
        raise IncorrectLookupParameters(exc) from None


class SpreadsheetAdminMixin:
    """For an ImportExportModelAdmin: CSV and XLSX read within the import limits and
    written formula-safe (core.spreadsheets), and export links whose filters the list
    would refuse answered 400 with the reason, never a 500.

    The export page takes the list's filters from its query string and builds the
    list's own ChangeList from them; an unknown or malformed filter there is the
    same IncorrectLookupParameters the list answers.
    """

    import_formats = [BoundedCSV, BoundedXLSX]
    export_formats = [BoundedCSV, BoundedXLSX]

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, SpreadsheetRefused):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def get_export_queryset(self, request):
        with lookups_checked():
            queryset = super().get_export_queryset(request)
            # Some values are refused only when the query runs (PostgreSQL: a time
            # offset it cannot hold): run it now, not halfway through the file.
            queryset.exists()
        return queryset

    def export_action(self, request):
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            opts = self.model._meta
            context = {
                **self.admin_site.each_context(request),
                "opts": opts,
                "title": "Export refused",
                "list_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            }
            return TemplateResponse(request, "admin/export_refused.html", context, status=400)


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
