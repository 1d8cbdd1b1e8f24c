from django.contrib import admin
from django.db.models import Case, IntegerField, Value, When
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html

from core.admin import ReadOnlyAdminMixin

from .models import OutboxEvent, OutboxState
from .outbox import outbox_retry

# The list opens on what needs a person (design §19): dead events, then those still
# pending, then delivered ones; newest first within each.
NEEDS_A_PERSON_FIRST = Case(
    When(state=OutboxState.DEAD, then=Value(0)),
    When(state=OutboxState.PENDING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "error",
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

    def get_ordering(self, request):
        return [NEEDS_A_PERSON_FIRST.asc(), "-created_at"]

    @admin.display(description="Last error", ordering="last_error")
    def error(self, obj: OutboxEvent):
        # Shortened so the list fits the screen; the whole text on hover and on the page.
        if not obj.last_error:
            return ""
        return format_html(
            '<span title="{}">{}</span>', obj.last_error, truncatechars(obj.last_error, 60)
        )

    @admin.action(description="Retry selected events now")
    def retry_selected(self, request, queryset):
        count = outbox_retry(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for delivery.")
