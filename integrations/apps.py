from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from core.metrics import register

        from .metrics import OutboxCollector

        register(OutboxCollector())
