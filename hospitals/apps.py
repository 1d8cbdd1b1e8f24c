from django.apps import AppConfig


class HospitalsConfig(AppConfig):
    name = "hospitals"
    verbose_name = "Hospitals"

    def ready(self) -> None:
        # Here, not at module level: these import models, which need the app registry.
        from tasks.services import on_milestone

        from . import events, handlers, handoffs

        handlers.subscribe_all()
        events.describe_events()
        on_milestone(handoffs.handoff_arrive_on_milestone)
