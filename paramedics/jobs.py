"""Celery jobs of the paramedics app (beat runs them; see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from .services import roster_release_ended_shifts


@shared_task(name="paramedics.release_ended_shifts", ignore_result=True)
def release_ended_shifts() -> int:
    return roster_release_ended_shifts()
