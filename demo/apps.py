from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Data for trying the service and for the benchmarks: management commands only.

    It sits above the domain apps (it fills all of them through their services),
    so it is the one place allowed to import every one of them.
    """

    name = "demo"
    verbose_name = "Demo data"
