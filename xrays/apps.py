from django.apps import AppConfig


class XraysConfig(AppConfig):
    name = "xrays"
    verbose_name = "X-rays"

    def ready(self) -> None:
        # Here, not at module level: handlers import models, which need the app registry.
        from . import events, handlers

        handlers.subscribe_all()
        events.describe_events()
