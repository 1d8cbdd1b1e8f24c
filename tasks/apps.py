from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        # Here, not at module level: handlers import models, which need the app registry.
        from . import events, handlers, inbound

        handlers.subscribe_all()
        events.describe_events()
        inbound.describe_messages()
