from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from core.admin import SupervisorAdminMixin
from core.errors import ApplicationError, Duplicate

from .models import Paramedic, ParamedicStatus
from .services import (
    SELECTABLE_STATUSES,
    ensure_paramedic_unique,
    paramedic_create,
    paramedic_set_status,
    paramedic_update,
)

STATUS_COLOURS = {
    ParamedicStatus.AVAILABLE: "#2e7d32",
    ParamedicStatus.ON_TASK: "#e65100",
    ParamedicStatus.OFF_DUTY: "#607d8b",
}

EDITABLE = [
    "badge_number",
    "first_name",
    "last_name",
    "email",
    "phone",
    "certification_level",
    "status",
    "base_station",
]


class ParamedicAdminForm(forms.ModelForm):
    status = forms.ChoiceField(choices=[(s.value, s.label) for s in SELECTABLE_STATUSES])
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Set or reset the paramedic's login password (username: badge number).",
    )

    class Meta:
        model = Paramedic
        fields = EDITABLE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.status == ParamedicStatus.ON_TASK:
            # on_task belongs to the task state machine: show it, do not offer it.
            self.fields["status"].choices = ParamedicStatus.choices
            self.fields["status"].disabled = True

    def validate_unique(self):
        # The same check the API uses, shown as field errors instead of a 409.
        try:
            ensure_paramedic_unique(
                badge_number=self.cleaned_data.get("badge_number"),
                email=self.cleaned_data.get("email"),
                exclude_pk=self.instance.pk,
            )
        except Duplicate as exc:
            for field, errors in exc.errors.items():
                self.add_error(field, [e["message"] for e in errors])


@admin.register(Paramedic)
class ParamedicAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    form = ParamedicAdminForm
    list_display = [
        "badge_number",
        "full_name",
        "status_badge",
        "certification_level",
        "station",
        "current_task_link",
        "location_age",
    ]
    list_select_related = ["current_task"]
    list_filter = ["status", "certification_level", "base_station"]
    search_fields = ["badge_number", "first_name", "last_name", "email"]
    ordering = ["last_name", "first_name"]
    readonly_fields = ["id", "last_lat", "last_lon", "last_location_at", "created_at", "updated_at"]
    actions = ["mark_available", "mark_off_duty"]

    @admin.display(description="Station", ordering="base_station")
    def station(self, obj: Paramedic) -> str:
        return obj.base_station_code or "-"  # the code is the stored value: no query

    @admin.display(description="Name", ordering="last_name")
    def full_name(self, obj: Paramedic) -> str:
        return obj.full_name

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Paramedic):
        return format_html(
            '<span class="status-badge" data-status="{}" style="background:{};color:#fff;'
            'padding:1px 7px;border-radius:8px;font-size:11px">{}</span>',
            obj.status,
            STATUS_COLOURS[obj.status],
            obj.get_status_display(),
        )

    @admin.display(description="Current task")
    def current_task_link(self, obj: Paramedic):
        if obj.current_task is None:
            return "-"
        url = reverse("admin:tasks_emergencytask_change", args=[obj.current_task_id])
        task = obj.current_task
        return format_html('<a href="{}">{} ({})</a>', url, task.request_id, task.priority)

    @admin.display(description="Location age", ordering="last_location_at")
    def location_age(self, obj: Paramedic) -> str:
        if obj.last_location_at is None:
            return "unknown"
        return f"{timesince(obj.last_location_at)} ago"

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k in EDITABLE}
        # The form picks a Station; the services take its code, as the API does.
        data["base_station"] = data["base_station"].code if data.get("base_station") else ""
        password = form.cleaned_data.get("password") or None
        if change:
            changes = {k: data[k] for k in form.changed_data if k in data}
            if password:
                changes["password"] = password
            saved = paramedic_update(paramedic=obj, changes=changes)
        else:
            saved = paramedic_create(**data, password=password)
        # The admin reads obj.pk afterwards (messages, redirects).
        obj.pk, obj.id = saved.pk, saved.id

    def _set_status(self, request, queryset, status: str) -> None:
        changed, refused = 0, []
        for paramedic in queryset:
            try:
                paramedic_set_status(paramedic=paramedic, status=status)
            except ApplicationError as exc:
                refused.append(f"{paramedic.badge_number}: {exc.detail}")
            else:
                changed += 1
                self.log_change(request, paramedic, f"Marked {status}")
        if changed:
            self.message_user(request, f"{changed} paramedic(s) marked {status}.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

    @admin.action(description="Mark selected paramedics available")
    def mark_available(self, request, queryset):
        self._set_status(request, queryset, ParamedicStatus.AVAILABLE)

    @admin.action(description="Mark selected paramedics off duty")
    def mark_off_duty(self, request, queryset):
        self._set_status(request, queryset, ParamedicStatus.OFF_DUTY)
