"""The Celery app, configured from Django settings (CELERY_* names).

Without CELERY_BROKER_URL the settings make tasks run in-process (eager), so
the service works with nothing else running.
"""

import os

from celery import Celery, signals
from django.db import close_old_connections

# An entry point of its own (worker, beat): production unless told otherwise, like
# config/wsgi.py; the Makefile's worker and beat targets choose the local settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("paramedic")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Job modules are called jobs.py so they are not confused with the `tasks` app.
app.autodiscover_tasks(related_name="jobs")


@signals.task_prerun.connect
def _check_database_connection(task=None, **kwargs) -> None:
    """In a worker, drop a connection the database closed (restart, timeout) before
    a job uses it. Not for eager jobs: they run inside the caller's connection."""
    if task is not None and task.request.is_eager:
        return
    close_old_connections()
