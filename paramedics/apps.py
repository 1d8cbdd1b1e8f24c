from django.apps import AppConfig


class ParamedicsConfig(AppConfig):
    name = "paramedics"
    verbose_name = "Roster"
