from django.apps import AppConfig


class HospitalsConfig(AppConfig):
    name = "hospitals"
    verbose_name = "Hospitals"

    def ready(self) -> None:
        # Here, not at module level: these import models, which need the app registry.
        from tasks.admin_views import add_overview_section
        from tasks.services import on_milestone, on_status_change

        from . import events, handlers, handoffs, selectors

        handlers.subscribe_all()
        events.describe_events()
        on_milestone(handoffs.handoff_arrive_on_milestone)
        on_status_change(handoffs.handoff_end_on_task_cancelled)
        add_overview_section(selectors.overview_section)
