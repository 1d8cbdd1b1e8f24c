"""Test settings: fast hashing, no throttling surprises, isolated media dir."""

import tempfile

from .base import *  # noqa: F403
from .base import DATABASES, REST_FRAMEWORK, STATIC_ROOT, STORAGES

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
        "upload_parts": "10000/min",
    },
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than shared-cache memory: the ASGI server and the live-event
    # hub read it from their own threads while a test writes, which shared-cache
    # memory answers with "table is locked" instead of waiting. One per process
    # (pytest-xdist workers, parallel checkouts); no disk flushes (a test database).
    _dir = tempfile.mkdtemp(prefix="paramedic-test-db-")
    DATABASES["default"]["TEST"] = {"NAME": f"{_dir}/test.sqlite3"}
    DATABASES["default"]["OPTIONS"]["init_command"] += "PRAGMA synchronous=OFF;"
# Look static files up per request instead of scanning every app's files each
# time a test client builds the middleware (about 70 ms per client).
WHITENOISE_AUTOREFRESH = True
