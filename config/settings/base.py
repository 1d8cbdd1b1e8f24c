"""Settings shared by every mode.

Each environment variable switches its own part (design §3): DATABASE_URL ->
PostgreSQL, CELERY_BROKER_URL -> RabbitMQ, S3_BUCKET -> S3. Unset means the
embedded default, so `make run` needs nothing but Python.
"""

import importlib.util
import zoneinfo
from datetime import timedelta
from pathlib import Path

import environ
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotocoreConfig
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Known to everyone who can read this repository: for `make run` and tests only.
# Production settings have no default and refuse this one (design §16).
DEVELOPMENT_SECRET_KEY = "insecure-local-only-key-never-use-it-in-production-0123456789"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Shift import/export in the admin (CSV, XLSX).
    "import_export",
    "core",
    "integrations",
    "paramedics",
    "tasks",
    "xrays",
    "hospitals",
    "demo",
]

MIDDLEWARE = [
    "core.logging.RequestIdMiddleware",
    "core.middleware.AccessLogMiddleware",
    "core.metrics.MetricsMiddleware",
    "api.errors.ApiJsonErrorMiddleware",
    "core.middleware.RejectNulBytesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and Swagger UI's static files; no CDN, no extra server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.ConsoleTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL is set -----------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'paramedic.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # Writers wait for the lock instead of failing at once with "database is locked";
    # WAL lets the live-event hub and open streams read while a request writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        init_command="PRAGMA journal_mode=WAL;",
        # A write transaction takes the write lock when it begins: two writers then
        # wait for each other (up to `timeout`). A deferred one that read first and
        # then wrote would fail at once with "database is locked" (SQLite cannot
        # wait there without risking a deadlock), as the after-commit publisher
        # thread marking rows delivered did beside a request or seed_demo.
        transaction_mode="IMMEDIATE",
    )
else:
    # A pool per process (psycopg_pool), not persistent connections: under the ASGI
    # server each request runs in a thread of its own, and a connection kept per
    # thread would be opened per request and linger until the thread is collected.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The process works in UTC: the API (ISO 8601, `Z`), logs, jobs and events. The console
# (/admin/) shows and reads times in DJANGO_TIME_ZONE, activated per request
# (core.middleware.ConsoleTimeZoneMiddleware), each date-time with its zone
# (config/formats).
TIME_ZONE = "UTC"
CONSOLE_TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
try:
    zoneinfo.ZoneInfo(CONSOLE_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"DJANGO_TIME_ZONE {CONSOLE_TIME_ZONE!r} is not an IANA time zone (e.g. Europe/Berlin)."
    ) from None
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Leaflet for the dispatch map, from the django-leaflet package's files (served like
# the admin's: no CDN). Only its static files are used: the package's app imports
# GeoDjango, which needs GDAL.
STATICFILES_DIRS = [
    (
        "vendor/leaflet",
        Path(importlib.util.find_spec("leaflet").submodule_search_locations[0])
        / "static"
        / "leaflet",
    )
]
# Outside production, serve straight from the apps (no collectstatic step needed).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

# --- Storage: filesystem under var/media unless S3_BUCKET is set -------------
# X-rays are private: no public ACL, no querystring-less URLs; downloads are signed.
S3_BUCKET = env("S3_BUCKET", default="")
XRAY_DOWNLOAD_URL_SECONDS = env.int("XRAY_DOWNLOAD_URL_SECONDS", default=300)
# Large files go up as multipart in 8 MB parts, 4 at a time.
S3_TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=8 * 1024 * 1024,
    multipart_chunksize=8 * 1024 * 1024,
    max_concurrency=4,
)
# Fail fast when storage is down: the client gets a 503 and retries. With
# client_config set, django-storages ignores its own signature and addressing
# options, so they live here: SigV4 presigned URLs, path-style addressing.
S3_CLIENT_CONFIG = BotocoreConfig(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    connect_timeout=3,
    read_timeout=60,
    retries={"max_attempts": 2, "mode": "standard"},
)
if S3_BUCKET:
    DEFAULT_STORAGE = {
        "BACKEND": "core.storage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env("S3_ENDPOINT_URL", default=None),
            "access_key": env("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env("S3_SECRET_ACCESS_KEY", default=None),
            "region_name": env("S3_REGION", default="us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": XRAY_DOWNLOAD_URL_SECONDS,
            # Keys are fresh UUIDs: skip the existence check (a HEAD per upload).
            "file_overwrite": True,
            "transfer_config": S3_TRANSFER_CONFIG,
            "client_config": S3_CLIENT_CONFIG,
        },
    }
else:
    DEFAULT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery: in-process (eager) unless CELERY_BROKER_URL is set --------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # Eager jobs still pass through a producer (Celery serialises their arguments);
    # without a URL kombu names a default AMQP host for it and warns about it.
    CELERY_BROKER_WRITE_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Messages a worker process holds ahead (acks_late: unacknowledged, so never lost).
# With 1, every job waits a broker round trip for the next; outbox jobs are short.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=8)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Keep a worker's database connection across jobs instead of reconnecting for each.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="paramedic")
# At-least-once on RabbitMQ: a message is acked only after its job ran (acks_late)
# and is requeued if the worker dies. Publishes are not confirmed one by one: the
# durable record is the outbox row (or beat's schedule), never the job message, and a
# lost message only leaves the row to the relay. A request does not wait for the
# broker's round trip per job.
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": False}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# A request must not hang on a dead broker: try briefly, then leave it to the relay.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {
        "task": "integrations.relay_outbox",
        "schedule": env.float("OUTBOX_RELAY_SECONDS", default=10.0),
    },
    "send-reminders": {
        "task": "tasks.send_reminders",
        "schedule": env.float("REMINDER_CHECK_SECONDS", default=60.0),
    },
    "release-ended-shifts": {
        "task": "paramedics.release_ended_shifts",
        "schedule": env.float("ROSTER_CHECK_SECONDS", default=60.0),
    },
    "purge-live-events": {
        "task": "integrations.purge_live_events",
        "schedule": env.float("LIVE_PURGE_SECONDS", default=3600.0),
    },
    "purge-delivered": {
        "task": "integrations.purge_delivered",
        "schedule": env.float("OUTBOX_PURGE_SECONDS", default=3600.0),
    },
    "purge-idempotency-records": {
        "task": "core.purge_idempotency_records",
        "schedule": env.float("IDEMPOTENCY_PURGE_SECONDS", default=3600.0),
    },
    "maintain-location-trail": {
        "task": "paramedics.maintain_location_trail",
        "schedule": env.float("LOCATION_PURGE_SECONDS", default=3600.0),
    },
    "sweep-xray-uploads": {
        "task": "xrays.sweep_uploads",
        "schedule": env.float("XRAY_UPLOAD_SWEEP_SECONDS", default=900.0),
    },
}

# --- Live updates (design §12) ----------------------------------------------
# A comment line this often keeps proxies from closing an idle stream.
LIVE_HEARTBEAT_SECONDS = env.float("LIVE_HEARTBEAT_SECONDS", default=15.0)
# Events are kept this long for replay after Last-Event-ID (at least 24 h).
LIVE_RETENTION_HOURS = env.int("LIVE_RETENTION_HOURS", default=48)
# Without PostgreSQL's LISTEN (SQLite), each process reads new events this often.
LIVE_POLL_SECONDS = env.float("LIVE_POLL_SECONDS", default=1.0)
# A session's stream (the admin board) ends after this; a token's when it expires.
LIVE_STREAM_MAX_SECONDS = env.int("LIVE_STREAM_MAX_SECONDS", default=3600)
# Open streams per user; one more closes that user's oldest (`too_many_streams`).
# Counted in the cache: across processes when CACHE_URL is shared, else per process.
LIVE_MAX_STREAMS_PER_USER = env.int("LIVE_MAX_STREAMS_PER_USER", default=5)
# Events waiting for one stream's reader; past it the stream is closed (`too_slow`)
# and the reader resumes from its last id, by replay.
LIVE_STREAM_BACKLOG = env.int("LIVE_STREAM_BACKLOG", default=1000)

# --- Outbox delivery (design §8) -------------------------------------------
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
# Delivered rows are kept this long (support looks up what was sent); pending and
# dead rows are kept until delivered or retried. Received messages' outcomes too.
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=7)
INBOX_RETENTION_DAYS = env.int("INBOX_RETENTION_DAYS", default=30)
OUTBOX_RETRY_BASE_SECONDS = env.float("OUTBOX_RETRY_BASE_SECONDS", default=5.0)
OUTBOX_RETRY_MAX_SECONDS = env.float("OUTBOX_RETRY_MAX_SECONDS", default=600.0)
# How long a worker's claim on a row lasts; a crashed worker's rows are due again after it.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=60)
OUTBOX_RELAY_BATCH = env.int("OUTBOX_RELAY_BATCH", default=100)
# The after-commit job delivers its row and up to this many - 1 others due for the
# same destination (in a burst one job does the work of many).
OUTBOX_DELIVER_BATCH = env.int("OUTBOX_DELIVER_BATCH", default=20)

# --- Event bus (design §11): unset means no publishing ------------------------
EVENT_BUS_URL = env("EVENT_BUS_URL", default="")
EVENT_EXCHANGE = env("EVENT_EXCHANGE", default="paramedic.events")
EVENT_SOURCE = env("EVENT_SOURCE", default="/paramedic-service")
EVENT_BUS_CONNECT_TIMEOUT = env.float("EVENT_BUS_CONNECT_TIMEOUT", default=2.0)
EVENT_BUS_CONFIRM_TIMEOUT = env.float("EVENT_BUS_CONFIRM_TIMEOUT", default=5.0)
# After a failed publish from a request, requests leave the bus to the relay this long.
EVENT_BUS_REST_SECONDS = env.float("EVENT_BUS_REST_SECONDS", default=10.0)
# Inbound: emergency requests the Patient Service publishes (`make consumer`).
EVENT_INBOUND_EXCHANGE = env("EVENT_INBOUND_EXCHANGE", default="patient.events")
EVENT_INBOUND_ROUTING_KEY = env("EVENT_INBOUND_ROUTING_KEY", default="emergency.requested")
EVENT_INBOUND_QUEUE = env("EVENT_INBOUND_QUEUE", default="paramedic.emergency-requests")
EVENT_INBOUND_DEAD_QUEUE = env(
    "EVENT_INBOUND_DEAD_QUEUE", default="paramedic.emergency-requests.dead"
)
# The service account the consumer creates tasks as (group `services`).
EVENT_CONSUMER_USERNAME = env("EVENT_CONSUMER_USERNAME", default="patient-service")
# A message delivered more often than this without being finished (its consumer died
# on it each time) is poison: dead-lettered instead of handled again.
EVENT_CONSUMER_MAX_DELIVERIES = env.int("EVENT_CONSUMER_MAX_DELIVERIES", default=5)

# --- Outside services: unset means events are logged (design §8) -------------
PATIENT_SERVICE_URL = env("PATIENT_SERVICE_URL", default="")
NOTIFICATION_SERVICE_URL = env("NOTIFICATION_SERVICE_URL", default="")
XRAY_SERVICE_URL = env("XRAY_SERVICE_URL", default="")
INTEGRATION_TOKEN = env("INTEGRATION_TOKEN", default="")
# design §15: `json` (POST /xrays, §8) or `dicomweb` (STOW-RS to a PACS; the URL is
# then its DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web). Basic auth with
# XRAY_SERVICE_USER, else INTEGRATION_TOKEN as a bearer token.
XRAY_SERVICE_KIND = env("XRAY_SERVICE_KIND", default="json")
if XRAY_SERVICE_KIND not in ("json", "dicomweb"):
    raise ImproperlyConfigured("XRAY_SERVICE_KIND must be `json` or `dicomweb`")
XRAY_SERVICE_USER = env("XRAY_SERVICE_USER", default="")
XRAY_SERVICE_PASSWORD = env("XRAY_SERVICE_PASSWORD", default="")
# A STOW of a large study: the PACS answers after it has stored all of it.
XRAY_SERVICE_TIMEOUT_SECONDS = env.float("XRAY_SERVICE_TIMEOUT_SECONDS", default=120.0)

# --- Domain settings -------------------------------------------------------
STALE_LOCATION_MINUTES = env.int("STALE_LOCATION_MINUTES", default=15)
# The board's alarm (design §19): a critical task pending this long without a
# paramedic sounds and shows an alert until it is assigned (or the browser mutes it).
ALERT_UNASSIGNED_SECONDS = env.int("ALERT_UNASSIGNED_SECONDS", default=120)
TASK_START_REMINDER_MINUTES = env.int("TASK_START_REMINDER_MINUTES", default=10)
TASK_UNASSIGNED_ALERT_MINUTES = env.int("TASK_UNASSIGNED_ALERT_MINUTES", default=5)
# Field time (design §17): how long an Idempotency-Key is remembered (at least 48 h),
# and the response-time target the dispatch overview measures against.
IDEMPOTENCY_KEY_HOURS = max(48, env.int("IDEMPOTENCY_KEY_HOURS", default=48))
RESPONSE_TARGET_MINUTES = env.int("RESPONSE_TARGET_MINUTES", default=9)
# Hospital handoff (design §21): the ambulance patient offload time (arrival to
# handover) the overview measures against; a common standard is 90 % within 30 minutes.
OFFLOAD_TARGET_MINUTES = env.int("OFFLOAD_TARGET_MINUTES", default=30)
# Dispatch plans and travel time (design §18). ROUTING: `estimate` (great-circle
# distance x ROUTING_DETOUR_FACTOR at a speed by priority) or `pgrouting` (road times
# over the graph `manage.py load_roads` loaded; off the graph, the estimate).
ROUTING = env("ROUTING", default="estimate")
if ROUTING not in ("estimate", "pgrouting"):
    raise ImproperlyConfigured("ROUTING must be `estimate` or `pgrouting`")
ROUTING_DETOUR_FACTOR = env.float("ROUTING_DETOUR_FACTOR", default=1.35)
# Average speeds: with lights and siren (critical, urgent), and without (routine).
ROUTING_EMERGENCY_SPEED_KMH = env.float("ROUTING_EMERGENCY_SPEED_KMH", default=60.0)
ROUTING_SPEED_KMH = env.float("ROUTING_SPEED_KMH", default=45.0)
# A point further than this from every road node is off the graph.
ROUTING_SNAP_MAX_METERS = env.float("ROUTING_SNAP_MAX_METERS", default=300.0)
# A qualified crew is still preferred when it arrives at most this much after the
# fastest, even past the target.
QUALIFIED_EXTRA_MINUTES = env.int("QUALIFIED_EXTRA_MINUTES", default=3)
# How far a device's clock may be off the server's: a device time (`at`) is refused
# further ahead than this, or earlier than the task's assignment less this.
DEVICE_CLOCK_SKEW_SECONDS = env.int("DEVICE_CLOCK_SKEW_SECONDS", default=120)
# Location trails (design §20): fixes one POST may carry (a device flushing 10 minutes
# of fixes every 5 s; SQLite takes 124 rows in one INSERT), how long fixes are kept,
# the longest window one GET of a trail may span, and how many days ahead PostgreSQL's
# daily partitions are created.
LOCATION_BATCH_MAX = env.int("LOCATION_BATCH_MAX", default=120)
LOCATION_RETENTION_DAYS = env.int("LOCATION_RETENTION_DAYS", default=30)
LOCATION_WINDOW_MAX_HOURS = env.int("LOCATION_WINDOW_MAX_HOURS", default=24)
LOCATION_PARTITION_DAYS_AHEAD = env.int("LOCATION_PARTITION_DAYS_AHEAD", default=7)
# Rosters (design §14): `available` only while on a shift; the dispatch map's tiles
# ({z}/{x}/{y} URL template, empty: no background map, the markers still show).
ROSTER_REQUIRES_SHIFT = env.bool("ROSTER_REQUIRES_SHIFT", default=False)
MAP_TILE_URL = env("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", default="&copy; OpenStreetMap contributors")
# Shift import/export in the admin (django-import-export; CSV and XLSX): each file in
# one transaction, so a bad row imports nothing.
IMPORT_EXPORT_USE_TRANSACTIONS = True
# What one import may hold (core.spreadsheets): the file's bytes; an XLSX's
# uncompressed bytes in all and per member, and a large member's compression ratio
# (checked before any parser reads it); rows, and characters in a cell.
IMPORT_MAX_FILE_BYTES = env.int("IMPORT_MAX_FILE_BYTES", default=5 * 1024 * 1024)
IMPORT_MAX_UNPACKED_BYTES = env.int("IMPORT_MAX_UNPACKED_BYTES", default=20 * 1024 * 1024)
IMPORT_MAX_MEMBER_BYTES = env.int("IMPORT_MAX_MEMBER_BYTES", default=10 * 1024 * 1024)
IMPORT_MAX_COMPRESSION_RATIO = env.int("IMPORT_MAX_COMPRESSION_RATIO", default=100)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=5000)
IMPORT_MAX_CELL_CHARS = env.int("IMPORT_MAX_CELL_CHARS", default=2000)
XRAY_MAX_UPLOAD_BYTES = env.int("XRAY_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
# Resumable uploads (design §13): how long a session may take, the part size (S3: at
# least 5 MiB; 8 MiB makes a 200 MB X-ray 25 parts), how long a part URL lives, how long
# a completing request holds a session, and how old an object or multipart upload
# nobody owns must be before the sweep removes it.
XRAY_UPLOAD_SESSION_HOURS = env.int("XRAY_UPLOAD_SESSION_HOURS", default=24)
XRAY_UPLOAD_PART_BYTES = env.int("XRAY_UPLOAD_PART_BYTES", default=8 * 1024 * 1024)
XRAY_UPLOAD_PART_URL_SECONDS = env.int("XRAY_UPLOAD_PART_URL_SECONDS", default=3600)
# Open (uploading or completing) sessions one paramedic may hold at once.
XRAY_UPLOAD_MAX_OPEN_SESSIONS = env.int("XRAY_UPLOAD_MAX_OPEN_SESSIONS", default=10)
XRAY_UPLOAD_COMPLETE_LEASE_SECONDS = env.int("XRAY_UPLOAD_COMPLETE_LEASE_SECONDS", default=300)
XRAY_ORPHAN_GRACE_MINUTES = env.int("XRAY_ORPHAN_GRACE_MINUTES", default=60)
# An X-ray always goes to disk (its view has its own upload handler, xrays.uploads).
# Any other upload (a shift import), and under ASGI every request body as it is read,
# stays in memory up to this and is spooled to a temporary file beyond it.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Who is calling, and how often (design §16) ----------------------------------
# How many proxies in front of the service append to X-Forwarded-For; 0: none, the
# socket's peer is the client (core.net.client_address).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Failed logins per account before it is held for the rest of the window.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=10)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)

# /metrics (design §10): readable with this bearer token, or from a loopback client.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- API ---------------------------------------------------------------------
# JSON request bodies (X-ray files go as multipart, under XRAY_MAX_UPLOAD_BYTES).
JSON_MAX_BODY_BYTES = env.int("JSON_MAX_BODY_BYTES", default=1024 * 1024)
# Under the ASGI server: the largest body any route but the X-ray uploads takes,
# refused (413) before it is read (core.asgi). Admin imports are the largest.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=10 * 1024 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "api.filters.RejectUnknownQueryParams",
        "django_filters.rest_framework.DjangoFilterBackend",
        "api.filters.SearchFilter",
        "api.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env("THROTTLE_AUTH_RATE", default="20/min"),
        "uploads": env("THROTTLE_UPLOAD_RATE", default="120/min"),
        # Filesystem mode's part PUTs, per client address (they carry no JWT).
        "upload_parts": env("THROTTLE_UPLOAD_PART_RATE", default="600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # DRF's own throttles read the same proxy count; ours use core.net.client_address.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_OBTAIN_SERIALIZER": "api.auth.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "api.auth.TokenRefreshSerializer",
    # Every token carries a hash of the password hash: a password change or reset
    # ends every session at once (api.authentication.session_is_current).
    "CHECK_REVOKE_TOKEN": True,
    "REVOKE_TOKEN_CLAIM": "sv",
}

# The OpenAPI schema and Swagger UI describe the contract and hold no data; device and
# integration teams build against them. API_DOCS_PUBLIC=false limits them to signed-in
# supervisors (admin session or JWT) for deployments that want them hidden.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)

SPECTACULAR_SETTINGS = {
    "TITLE": "Paramedic Service API",
    "DESCRIPTION": (
        "Paramedic profiles, emergency tasks and X-ray records. "
        "Errors are JSON with a machine-readable `code` and a human `detail`; "
        "field errors are listed under `errors`."
    ),
    # The contract's version (semantic): the newest entry of docs/api-changelog.md.
    "VERSION": "7.3.0",
    # 3.1: JSON Schema proper, so a nullable object is `oneOf [ref, null]`, which
    # validators and client generators honour (3.0's `nullable` beside `allOf` is ignored).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Who may read them: api.schema.CanReadApiDocs (API_DOCS_PUBLIC).
    "SERVE_PERMISSIONS": ["api.schema.CanReadApiDocs"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "api.authentication.JWTAuthentication",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_links",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ParamedicStatusEnum": "paramedics.models.ParamedicStatus",
        "CertificationLevelEnum": "paramedics.models.CertificationLevel",
        "TaskStatusEnum": "tasks.models.TaskStatus",
        "TaskPriorityEnum": "tasks.models.TaskPriority",
        "HospitalStatusEnum": "hospitals.models.HospitalStatus",
        "CapabilityEnum": "tasks.models.Capability",
    },
}

CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://"),
}

LOG_FORMAT = env("LOG_FORMAT", default="json")  # "json" or "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {
            "()": "core.logging.PlainFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django logs every 4xx here as a WARNING, a second line beside the access
        # log's; 5xx (with their traceback) stay.
        "django.request": {"level": "ERROR"},
        # runserver's request lines (make run) through our handler and its redaction.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # pydicom's warnings may quote element values: keep them out of the logs.
        "pydicom": {"level": "ERROR"},
        # httpx logs every request URL at INFO; URLs name patients (/patients/{id}).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
