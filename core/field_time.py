"""Device times (design §17): the bounds every time a field device reports is held to.

Crews act in dead zones and report later, and a phone's clock may be a little off
ours, so a device's time of an action (a status change, a milestone, a location fix)
is accepted within a window around the server's clock: at most the clock skew
(DEVICE_CLOCK_SKEW_SECONDS) ahead, at most DEVICE_TIME_BEHIND back. The task rules
add their own bounds (the assignment, the previous milestone) on top.
"""

from datetime import datetime, timedelta

from django.conf import settings

# How far back a device's time may lie: a device reporting after a long dead zone.
DEVICE_TIME_BEHIND = timedelta(hours=24)


def clock_skew() -> timedelta:
    return timedelta(seconds=settings.DEVICE_CLOCK_SKEW_SECONDS)


def device_time_problem(at: datetime, *, now: datetime) -> str | None:
    """Why `at` is out of bounds (a sentence for the client), or None when it is in."""
    skew = clock_skew()
    if at > now + skew:
        return f"The time lies more than {span(skew)} in the future."
    if at < now - DEVICE_TIME_BEHIND:
        return f"The time lies more than {span(DEVICE_TIME_BEHIND)} in the past."
    return None


def span(delta: timedelta) -> str:
    """A bound as people say it: "24 hours", "2 minutes", "90 seconds"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"
