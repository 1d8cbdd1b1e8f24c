from django.contrib import admin

from core.admin import ReadOnlyAdminMixin

from .models import OutboxEvent
from .outbox import outbox_retry


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "destination", "kind"]
    search_fields = ["id", "aggregate_id"]
    date_hierarchy = "created_at"
    actions = ["retry_selected"]
    readonly_fields = [
        "id",
        "kind",
        "destination",
        "aggregate_type",
        "aggregate_id",
        "payload",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
    ]

    @admin.action(description="Retry selected events now")
    def retry_selected(self, request, queryset):
        count = outbox_retry(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for delivery.")
