"""Test settings: fast hashing, no throttling surprises, isolated media dir."""

import tempfile

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, STATIC_ROOT, STORAGES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="paramedic-test-media-")
if STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    STORAGES["default"]["OPTIONS"]["location"] = MEDIA_ROOT
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "auth": "1000/min",
        "uploads": "1000/min",
    },
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Look static files up per request instead of scanning every app's files each
# time a test client builds the middleware (about 70 ms per client).
WHITENOISE_AUTOREFRESH = True
