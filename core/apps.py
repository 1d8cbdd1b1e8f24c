from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-app rules and infrastructure; installed for its management commands."""

    name = "core"
