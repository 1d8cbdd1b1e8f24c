"""The end of a shift (design §14): the roster's own job, run by beat."""

import logging
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..events import ParamedicEvent, record_paramedic_event
from ..models import Paramedic, ParamedicStatus, ShiftAssignment
from ..selectors import is_on_shift
from .profiles import paramedic_update

logger = logging.getLogger(__name__)

User = get_user_model()

# The login-less user the roster's automatic changes are logged as (admin history).
ROSTER_ACTOR_USERNAME = "roster-automation"


def roster_actor():
    """The user the roster's automatic changes are logged as (it cannot log in)."""
    user, created = User.objects.get_or_create(
        username=ROSTER_ACTOR_USERNAME, defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def roster_release_ended_shifts(*, now: datetime | None = None, batch: int = 500) -> int:
    """Take `available` paramedics off duty when their shift has ended (design §14).

    One `on_task` is left alone until its task is over (it is `available` again
    then, and the next run takes it off duty); one already on its next shift stays
    available. Each change goes through paramedic_update (the same rules and lock as
    a supervisor's), is written to the admin log by ROSTER_ACTOR_USERNAME and
    records a `paramedic.shift_ended` event. Returns how many went off duty.
    """
    now = now or timezone.now()
    due = list(
        ShiftAssignment.objects.filter(released_at__isnull=True, ends_at__lte=now)
        .select_related("shift__station")
        .order_by("ends_at", "pk")[:batch]
    )
    released = 0
    actor = None
    for assignment in due:
        with transaction.atomic():
            paramedic = Paramedic.objects.select_for_update().get(pk=assignment.paramedic_id)
            if paramedic.status == ParamedicStatus.ON_TASK:
                continue  # finishes its task first; the next run sees it again
            # Claim the row: a concurrent run (two beats) does the change only once.
            claimed = ShiftAssignment.objects.filter(
                pk=assignment.pk, released_at__isnull=True
            ).update(released_at=now)
            if not claimed:
                continue
            if paramedic.status != ParamedicStatus.AVAILABLE or is_on_shift(paramedic, at=now):
                continue
            paramedic = paramedic_update(
                paramedic=paramedic, changes={"status": ParamedicStatus.OFF_DUTY}
            )
            actor = actor or roster_actor()
            LogEntry.objects.log_actions(
                actor.pk,
                [paramedic],
                CHANGE,
                change_message=(
                    f"Marked off_duty: shift {assignment.shift_id} at "
                    f"{assignment.shift.station.code} ended at {assignment.ends_at.isoformat()}."
                ),
                single_object=True,
            )
            record_paramedic_event(
                paramedic,
                ParamedicEvent.SHIFT_ENDED,
                from_status=ParamedicStatus.AVAILABLE,
                shift=assignment.shift,
                at=assignment.ends_at,
            )
            released += 1
    if released:
        logger.info("roster: %d paramedic(s) off duty after their shift", released)
    return released
