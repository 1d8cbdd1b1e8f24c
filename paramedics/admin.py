from django import forms
from django.contrib import admin, messages

from config.admin import SupervisorAdminMixin
from config.errors import ApplicationError, Duplicate

from .models import Paramedic, ParamedicStatus
from .services import (
    SELECTABLE_STATUSES,
    ensure_paramedic_unique,
    paramedic_create,
    paramedic_set_status,
    paramedic_update,
)

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
        "status",
        "certification_level",
        "base_station",
        "last_location_at",
    ]
    list_filter = ["status", "certification_level", "base_station"]
    search_fields = ["badge_number", "first_name", "last_name", "email"]
    ordering = ["last_name", "first_name"]
    readonly_fields = ["id", "last_lat", "last_lon", "last_location_at", "created_at", "updated_at"]
    actions = ["mark_available", "mark_off_duty"]

    @admin.display(description="Name", ordering="last_name")
    def full_name(self, obj: Paramedic) -> str:
        return obj.full_name

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k in EDITABLE}
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
                changed += 1
            except ApplicationError as exc:
                refused.append(f"{paramedic.badge_number}: {exc.detail}")
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
