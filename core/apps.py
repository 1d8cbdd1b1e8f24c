from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-app rules and infrastructure; installed for its management commands."""

    name = "core"

    def ready(self) -> None:
        from .db import forget_connections_after_fork

        forget_connections_after_fork()
