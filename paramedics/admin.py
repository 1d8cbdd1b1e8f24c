from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.timesince import timesince
from import_export.admin import ImportExportModelAdmin

from core.admin import (
    SpreadsheetAdminMixin,
    SupervisorAdminMixin,
    SupervisorPagesMixin,
    add_service_errors,
)
from core.errors import ApplicationError
from core.roles import is_supervisor

from . import admin_views
from .models import Paramedic, ParamedicStatus, Shift, Station
from .resources import ShiftResource
from .services import (
    SELECTABLE_STATUSES,
    check_no_overlap,
    ensure_paramedic_unique,
    ensure_station_code_free,
    paramedic_create,
    paramedic_set_status,
    paramedic_update,
    shift_create,
    shift_delete,
    shift_update,
    station_create,
    station_update,
    validate_shift_period,
)

STATUS_COLOURS = {
    ParamedicStatus.AVAILABLE: "#2e7d32",
    ParamedicStatus.ON_TASK: "#bf360c",
    ParamedicStatus.OFF_DUTY: "#546e7a",
}
UNLOCATED_COLOUR = "#795548"

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
        # The service's check (the API's), shown as field errors instead of a 409.
        try:
            ensure_paramedic_unique(
                badge_number=self.cleaned_data.get("badge_number"),
                email=self.cleaned_data.get("email"),
                exclude_pk=self.instance.pk,
            )
        except ApplicationError as exc:
            add_service_errors(self, exc)


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
        # Available without a location is not dispatchable (design §18 ranks only the
        # located): it says so instead of showing the plain green "Available".
        unlocated = obj.status == ParamedicStatus.AVAILABLE and obj.last_location_at is None
        return format_html(
            '<span class="status-badge" data-status="{}" data-located="{}" style="background:{};'
            'color:#fff;padding:1px 7px;border-radius:8px;font-size:11px">{}</span>',
            obj.status,
            "no" if unlocated else "yes",
            UNLOCATED_COLOUR if unlocated else STATUS_COLOURS[obj.status],
            f"{obj.get_status_display()}, no location" if unlocated else obj.get_status_display(),
        )

    @admin.display(description="Current task")
    def current_task_link(self, obj: Paramedic):
        if obj.current_task is None:
            return "-"
        url = reverse("admin:tasks_incident", args=[obj.current_task_id])
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


# --- Rosters (design §14) ----------------------------------------------------------


class StationAdminForm(forms.ModelForm):
    class Meta:
        model = Station
        fields = ["code", "name", "address", "lat", "lon", "min_staff"]

    def clean(self):
        data = super().clean()
        if (data.get("lat") is None) != (data.get("lon") is None):
            raise forms.ValidationError("Give both latitude and longitude, or neither.")
        return data

    def validate_unique(self):
        code = self.cleaned_data.get("code")
        if code:
            try:
                ensure_station_code_free(code, exclude_pk=self.instance.pk)
            except ApplicationError as exc:
                add_service_errors(self, exc)


@admin.register(Station)
class StationAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    form = StationAdminForm
    list_display = ["code", "name", "min_staff", "address", "has_location"]
    search_fields = ["code", "name", "address"]
    ordering = ["code"]
    readonly_fields = ["id", "created_at", "updated_at"]

    @admin.display(description="Location", boolean=True)
    def has_location(self, obj: Station) -> bool:
        return obj.lat is not None

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data.get(k) for k in ("code", "name", "address", "min_staff")}
        lat, lon = form.cleaned_data.get("lat"), form.cleaned_data.get("lon")
        data["location"] = None if lat is None else {"lat": lat, "lon": lon}
        saved = station_update(station=obj, changes=data) if change else station_create(**data)
        obj.pk, obj.id = saved.pk, saved.id


class ShiftAdminForm(forms.ModelForm):
    people = forms.ModelMultipleChoiceField(
        queryset=Paramedic.objects.order_by("badge_number"),
        required=False,
        label="Paramedics",
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text="A paramedic already on an overlapping shift is refused.",
    )

    class Meta:
        model = Shift
        fields = ["station", "starts_at", "ends_at", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["people"].initial = list(
                self.instance.assignments.values_list("paramedic_id", flat=True)
            )

    def clean(self):
        data = super().clean()
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at is None or ends_at is None:
            return data
        try:
            validate_shift_period(starts_at, ends_at)
            check_no_overlap(
                data.get("people") or [],
                starts_at,
                ends_at,
                exclude_shift=self.instance.pk if self.instance.pk else None,
            )
        except ApplicationError as exc:
            # The service names the paramedics "paramedics"; this form, "people".
            exc.errors = {"people" if k == "paramedics" else k: v for k, v in exc.errors.items()}
            add_service_errors(self, exc)
        return data

    def validate_constraints(self):
        """The period is checked in clean(), with a message a person can act on."""


class ShiftDateFilter(admin.SimpleListFilter):
    title = "when"
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("now", "Running now"), ("upcoming", "Upcoming"), ("past", "Past")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "past":
            return queryset.filter(ends_at__lte=now)
        return queryset


@admin.register(Shift)
class ShiftAdmin(
    SupervisorAdminMixin, SupervisorPagesMixin, SpreadsheetAdminMixin, ImportExportModelAdmin
):
    form = ShiftAdminForm
    resource_classes = [ShiftResource]
    list_display = ["__str__", "station", "starts_at", "ends_at", "people", "notes"]
    list_select_related = ["station"]
    list_filter = [ShiftDateFilter, "station", "paramedics"]
    search_fields = ["notes", "station__code", "paramedics__badge_number"]
    date_hierarchy = "starts_at"
    ordering = ["starts_at"]
    readonly_fields = ["id", "created_at", "updated_at"]
    change_list_template = "admin/paramedics/shift/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("paramedics")

    @admin.display(description="Paramedics")
    def people(self, obj: Shift) -> str:
        return ", ".join(p.badge_number for p in obj.paramedics.all()) or "-"

    # Shifts are plans, not records: supervisors may remove them.
    def has_delete_permission(self, request, obj=None) -> bool:
        return is_supervisor(request.user)

    def has_import_permission(self, request) -> bool:
        return is_supervisor(request.user)

    def has_export_permission(self, request) -> bool:
        return is_supervisor(request.user)

    def get_changeform_initial_data(self, request):
        """The week view's "add a shift" links pass station, starts_at and ends_at."""
        initial = super().get_changeform_initial_data(request)
        for name in ("starts_at", "ends_at"):
            raw = request.GET.get(name)
            try:
                parsed = parse_datetime(raw) if raw else None
                if parsed is not None:
                    parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(
                        UTC
                    )
            except (ValueError, OverflowError):  # not a time, or none UTC can hold
                parsed = None
            if parsed is None:
                initial.pop(name, None)
            else:
                initial[name] = parsed
        return initial

    def save_model(self, request, obj, form, change):
        data = {
            "station": form.cleaned_data["station"],
            "starts_at": form.cleaned_data["starts_at"],
            "ends_at": form.cleaned_data["ends_at"],
            "notes": form.cleaned_data.get("notes", ""),
            "paramedics": list(form.cleaned_data.get("people") or []),
        }
        saved = shift_update(shift=obj, changes=data) if change else shift_create(**data)
        obj.pk, obj.id = saved.pk, saved.id

    def save_related(self, request, form, formsets, change):
        """The assignments were written by the service (people is not a model field)."""

    def delete_model(self, request, obj):
        shift_delete(shift=obj)

    def delete_queryset(self, request, queryset):
        for shift in queryset:
            shift_delete(shift=shift)

    def get_urls(self):
        wrap = self.supervisor_page
        return [
            path(
                "week/",
                wrap(lambda r: admin_views.week_view(self, r)),
                name="paramedics_shift_week",
            ),
            *super().get_urls(),
        ]
