"""Local development: DEBUG on, everything else from base (embedded defaults)."""

from .base import *  # noqa: F403
from .base import LOGGING, STATIC_ROOT, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
if not env("LOG_FORMAT", default=""):
    LOGGING["handlers"]["console"]["formatter"] = "plain"  # readable in a terminal

# WhiteNoise expects the collectstatic target to exist, even when empty.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
