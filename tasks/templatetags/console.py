"""Template filters of the supervisor console (design §19)."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter(name="duration")
def human_duration(duration: timedelta | None) -> str | None:
    """A span as a dispatcher reads it: "45 s", "4 min 12 s", "2 h 5 min"."""
    if duration is None:
        return None
    seconds = int(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{sign}{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes} min"
