from django.contrib import admin

from core.admin import SupervisorAdminMixin

from .models import Hospital, HospitalStaff


@admin.register(Hospital)
class HospitalAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    """Supervisors keep hospitals here as in the API (design §21)."""

    list_display = ["code", "name", "status", "diversion_reason", "ed_beds_available", "updated_at"]
    list_filter = ["status"]
    search_fields = ["code", "name"]


@admin.register(HospitalStaff)
class HospitalStaffAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    list_display = ["user", "hospital", "created_at"]
    list_select_related = ["user", "hospital"]
    search_fields = ["user__username", "hospital__code"]
