"""Celery jobs of the paramedics app (beat runs them; see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from .services import location_trail_maintain, roster_release_ended_shifts


@shared_task(name="paramedics.release_ended_shifts", ignore_result=True)
def release_ended_shifts() -> int:
    return roster_release_ended_shifts()


@shared_task(name="paramedics.maintain_location_trail", ignore_result=True)
def maintain_location_trail() -> int:
    """Day partitions ahead, expired days dropped (design §20); returns rows gone
    from the DEFAULT partition or, on SQLite, the fixes deleted."""
    return location_trail_maintain().rows_deleted
