from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render

from config.admin import ReadOnlyInlineMixin, SupervisorAdminMixin
from config.errors import ApplicationError
from paramedics.models import Paramedic, ParamedicStatus

from .models import EmergencyTask, TaskHistory
from .services import task_assign, task_cancel


class TaskHistoryInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = TaskHistory
    fields = ["at", "from_status", "to_status", "actor", "paramedic", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "paramedic")


class AssignForm(forms.Form):
    paramedic = forms.ModelChoiceField(
        queryset=Paramedic.objects.filter(status=ParamedicStatus.AVAILABLE),
        required=False,
        empty_label="Nearest available (top candidate)",
    )


@admin.register(EmergencyTask)
class EmergencyTaskAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    list_display = [
        "request_id",
        "priority",
        "status",
        "paramedic",
        "address",
        "created_at",
        "assigned_at",
    ]
    list_filter = ["status", "priority", "paramedic", "created_at"]
    list_select_related = ["paramedic"]
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
    ]
    fields = [
        *readonly_fields[:5],
        "priority",
        "patient_id",
        "consultation_id",
        "description",
        "address",
        "lat",
        "lon",
        *readonly_fields[5:],
    ]

    def has_add_permission(self, request) -> bool:
        return False  # tasks arrive through the intake API (idempotent by request_id)

    @admin.action(description="Assign selected pending tasks")
    def assign_selected(self, request, queryset):
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            chosen = form.cleaned_data["paramedic"]
            for task in queryset:
                try:
                    task_assign(
                        task_id=task.pk, actor=request.user, paramedic_id=chosen and chosen.pk
                    )
                    self.message_user(request, f"{task.request_id}: assigned.")
                except ApplicationError as exc:
                    self.message_user(
                        request, f"{task.request_id}: {exc.detail}", level=messages.WARNING
                    )
            return redirect(request.get_full_path())
        return render(
            request,
            "admin/tasks/assign.html",
            {
                **self.admin_site.each_context(request),
                "tasks": queryset,
                "form": form,
                "title": "Assign tasks",
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Cancel selected tasks (reason: cancelled by supervisor)")
    def cancel_selected(self, request, queryset):
        for task in queryset:
            try:
                task_cancel(task_id=task.pk, actor=request.user, reason="cancelled by supervisor")
                self.message_user(request, f"{task.request_id}: cancelled.")
            except ApplicationError as exc:
                self.message_user(
                    request, f"{task.request_id}: {exc.detail}", level=messages.WARNING
                )
