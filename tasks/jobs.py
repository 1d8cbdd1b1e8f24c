"""Celery jobs of the tasks app (beat runs them; see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from .services import task_send_due_reminders


@shared_task(name="tasks.send_reminders", ignore_result=True)
def send_reminders() -> int:
    return task_send_due_reminders()
