from django.contrib import admin
from django.urls import path

from core.admin import SupervisorAdminMixin, SupervisorPagesMixin

from . import admin_views
from .models import Hospital, HospitalStaff


@admin.register(Hospital)
class HospitalAdmin(SupervisorAdminMixin, SupervisorPagesMixin, admin.ModelAdmin):
    """Supervisors keep hospitals here as in the API (design §21), and watch the
    hospital board."""

    list_display = ["code", "name", "status", "diversion_reason", "ed_beds_available", "updated_at"]
    list_filter = ["status"]
    search_fields = ["code", "name"]

    def get_urls(self):
        wrap = self.supervisor_page
        return [
            path(
                "board/",
                wrap(lambda r: admin_views.hospital_board_view(self, r)),
                name="hospitals_board",
            ),
            *[
                path(
                    f"board/<uuid:handoff_id>/{move}/",
                    wrap(
                        lambda r, handoff_id, move=move: admin_views.hospital_board_move_view(
                            self, r, handoff_id, move
                        )
                    ),
                    name=f"hospitals_board_{move}",
                )
                for move in admin_views.MOVES
            ],
            *super().get_urls(),
        ]


@admin.register(HospitalStaff)
class HospitalStaffAdmin(SupervisorAdminMixin, admin.ModelAdmin):
    list_display = ["user", "hospital", "created_at"]
    list_select_related = ["user", "hospital"]
    search_fields = ["user__username", "hospital__code"]
