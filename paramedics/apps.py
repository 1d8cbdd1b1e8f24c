from django.apps import AppConfig


class ParamedicsConfig(AppConfig):
    name = "paramedics"
    verbose_name = "Roster"

    def ready(self) -> None:
        # Here, not at module level: handlers import models, which need the app registry.
        from . import events, handlers

        handlers.subscribe_all()
        events.describe_events()
