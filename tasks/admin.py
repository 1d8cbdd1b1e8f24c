from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.template.defaultfilters import truncatechars
from django.urls import path
from django.utils.html import format_html

from core.admin import ReadOnlyInlineMixin, SupervisorAdminMixin, SupervisorPagesMixin
from core.errors import ApplicationError
from paramedics.models import Paramedic, ParamedicStatus

from . import admin_views, incident
from .models import CallType, EmergencyTask, TaskHistory
from .services import task_assign, task_cancel


class TaskHistoryInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = TaskHistory
    fields = ["at", "from_status", "to_status", "actor", "paramedic", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "paramedic")


class CancelForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)


class AssignForm(forms.Form):
    paramedic = forms.ModelChoiceField(
        queryset=Paramedic.objects.filter(status=ParamedicStatus.AVAILABLE),
        required=False,
        empty_label="Recommended (the top candidate, design §18)",
    )


@admin.register(CallType)
class CallTypeAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    """Response plans (run cards, design §18): supervisors edit them here. A plan's
    targets apply to tasks that arrive after the edit."""

    list_display = [
        "code",
        "label",
        "default_priority",
        "certification",
        "target_critical_minutes",
        "target_urgent_minutes",
        "target_routine_minutes",
        "capability",
    ]
    search_fields = ["code", "label"]

    def get_readonly_fields(self, request, obj=None):
        # Tasks refer to a plan by its code (and `other` is every task's default):
        # a code stays what it was created as; nobody deletes a plan (the mixin).
        return ["code"] if obj is not None else []


@admin.register(EmergencyTask)
class EmergencyTaskAdmin(SupervisorAdminMixin, SupervisorPagesMixin, admin.ModelAdmin):
    list_display = [
        "incident_link",
        "priority",
        "status",
        "assignee",
        "short_address",
        "created_at",
        "assigned_at",
    ]
    list_filter = ["status", "priority", "call_type", "paramedic", "created_at"]
    list_select_related = ["paramedic"]
    # A task opens on its incident page (design §19); the raw form is linked from there.
    list_display_links = None
    search_fields = ["request_id", "patient_id", "address"]
    date_hierarchy = "created_at"
    inlines = [TaskHistoryInline]
    actions = ["assign_selected", "cancel_selected"]
    # State lives in tasks.services: the change form shows it but never edits it.
    readonly_fields = [
        "id",
        "request_id",
        "created_by",
        "status",
        "paramedic",
        "created_at",
        "updated_at",
        "assigned_at",
        "started_at",
        "completed_at",
        "cancelled_at",
        # Set with its target on arrival (design §18): a later change would leave the
        # target of another plan.
        "call_type",
        "target_minutes",
    ]
    fields = [
        *readonly_fields[:5],
        *readonly_fields[-2:],
        "priority",
        "patient_id",
        "consultation_id",
        "description",
        "address",
        "lat",
        "lon",
        *readonly_fields[5:-2],
    ]

    def has_add_permission(self, request) -> bool:
        return False  # tasks arrive through the intake API (idempotent by request_id)

    def get_urls(self):
        wrap = self.supervisor_page
        return [
            path("board/", wrap(lambda r: admin_views.board_view(self, r)), name="tasks_board"),
            path(
                "board/<uuid:task_id>/assign/",
                wrap(lambda r, task_id: admin_views.board_assign_view(self, r, task_id)),
                name="tasks_board_assign",
            ),
            path(
                "overview/",
                wrap(lambda r: admin_views.overview_view(self, r)),
                name="tasks_overview",
            ),
            path("map/", wrap(lambda r: admin_views.map_view(self, r)), name="tasks_map"),
            path(
                "<uuid:task_id>/incident/",
                wrap(lambda r, task_id: incident.incident_view(self, r, task_id)),
                name="tasks_incident",
            ),
            path(
                "<uuid:task_id>/incident/assign/",
                wrap(lambda r, task_id: incident.incident_assign_view(self, r, task_id)),
                name="tasks_incident_assign",
            ),
            path(
                "<uuid:task_id>/incident/cancel/",
                wrap(lambda r, task_id: incident.incident_cancel_view(self, r, task_id)),
                name="tasks_incident_cancel",
            ),
            path(
                "<uuid:task_id>/incident/priority/",
                wrap(lambda r, task_id: incident.incident_priority_view(self, r, task_id)),
                name="tasks_incident_priority",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Paramedic", ordering="paramedic__badge_number")
    def assignee(self, obj):
        return obj.paramedic.badge_number if obj.paramedic else "-"

    @admin.display(description="Address", ordering="address")
    def short_address(self, obj):
        # Shortened so the list's columns fit 1440 px (design §19); whole on hover.
        return format_html(
            '<span title="{}">{}</span>', obj.address, truncatechars(obj.address, 40)
        )

    @admin.display(description="Request id", ordering="request_id")
    def incident_link(self, obj):
        return format_html('<a href="{}">{}</a>', incident.incident_url(obj), obj.request_id)

    @admin.action(description="Assign selected pending tasks")
    def assign_selected(self, request, queryset):
        def assign(task, data):
            chosen = data["paramedic"]
            task = task_assign(
                task_id=task.pk, actor=request.user, paramedic_id=chosen and chosen.pk
            )
            return task, f"Assigned to {task.paramedic}"

        return self._run_with_form(
            request, queryset, AssignForm, assign, "assign_selected", "Assign tasks", "assigned"
        )

    @admin.action(description="Cancel selected tasks (with a reason)")
    def cancel_selected(self, request, queryset):
        def cancel(task, data):
            task = task_cancel(task_id=task.pk, actor=request.user, reason=data["reason"])
            return task, f"Cancelled: {data['reason']}"

        return self._run_with_form(
            request, queryset, CancelForm, cancel, "cancel_selected", "Cancel tasks", "cancelled"
        )

    def _run_with_form(
        self, request, queryset, form_class, change, action: str, title: str, done: str
    ):
        """Ask for the form first; then apply `change` to each task through its service,
        logging successes to the admin log and refusals as warnings."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" not in request.POST or not form.is_valid():
            return self._intermediate(request, queryset, form, action, title)
        for task in queryset:
            try:
                task, log_message = change(task, form.cleaned_data)
            except ApplicationError as exc:
                self.message_user(
                    request, f"{task.request_id}: {exc.detail}", level=messages.WARNING
                )
            else:
                self.log_change(request, task, log_message)
                self.message_user(request, f"{task.request_id}: {done}.")
        return redirect(request.get_full_path())

    def _intermediate(self, request, queryset, form, action: str, title: str):
        return render(
            request,
            "admin/tasks/action_form.html",
            {
                **self.admin_site.each_context(request),
                "tasks": queryset,
                "form": form,
                "action": action,
                "title": title,
                "opts": self.model._meta,
            },
        )
