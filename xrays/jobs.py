"""Celery jobs of the xrays app (beat runs them; see CELERY_BEAT_SCHEDULE)."""

from dataclasses import asdict

from celery import shared_task

from .sessions import upload_sessions_sweep


@shared_task(name="xrays.sweep_uploads", ignore_result=True)
def sweep_uploads() -> dict:
    """Expire stale upload sessions; remove multipart uploads and objects nobody owns."""
    return asdict(upload_sessions_sweep())
