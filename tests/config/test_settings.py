"""Each environment variable switches its own part (design §3).

Settings are read in a fresh interpreter per case, exactly as the process
would read them at start.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DEBUG",
    "PATIENT_SERVICE_URL",
    "XRAY_SERVICE_KIND",
)

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "storage": settings.STORAGES["default"]["BACKEND"],
    "storage_options": {k: str(v) for k, v in settings.STORAGES["default"]["OPTIONS"].items()},
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "patient": settings.PATIENT_SERVICE_URL,
}))
"""


def read_settings(module: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_default_needs_nothing():
    s = read_settings("config.settings.local")
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(ROOT / "var" / "paramedic.sqlite3")
    assert s["storage"] == "django.core.files.storage.FileSystemStorage"
    assert s["storage_options"]["location"] == str(ROOT / "var" / "media")
    assert s["eager"] is True and s["broker"] == ""
    assert s["debug"] is True
    assert s["patient"] == ""


def test_each_variable_switches_only_its_part():
    s = read_settings(
        "config.settings.local", DATABASE_URL="postgres://postgres@127.0.0.1:5432/paramedic"
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["name"] == "paramedic"
    assert s["storage"].endswith("FileSystemStorage") and s["eager"] is True

    s = read_settings("config.settings.local", CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1//")
    assert s["eager"] is False and s["broker"].startswith("amqp://")
    assert s["engine"].endswith("sqlite3")

    s = read_settings(
        "config.settings.local", S3_BUCKET="xrays", S3_ENDPOINT_URL="http://127.0.0.1:8333"
    )
    assert s["storage"] == "core.storage.PrivateS3Storage"
    assert s["storage_options"]["bucket_name"] == "xrays"
    assert s["storage_options"]["endpoint_url"] == "http://127.0.0.1:8333"
    assert s["storage_options"]["querystring_auth"] == "True"  # private, signed URLs
    assert s["engine"].endswith("sqlite3") and s["eager"] is True


def test_production_refuses_to_start_without_secrets():
    with pytest.raises(subprocess.CalledProcessError) as excinfo:
        read_settings("config.settings.production")
    assert "DJANGO_SECRET_KEY" in excinfo.value.stderr


def test_an_unknown_xray_service_kind_refuses_to_start():
    with pytest.raises(subprocess.CalledProcessError) as excinfo:
        read_settings("config.settings.local", XRAY_SERVICE_KIND="soap")
    assert "XRAY_SERVICE_KIND must be `json` or `dicomweb`" in excinfo.value.stderr


def test_production_passes_deploy_check():
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="k7#Vq!2mZ@x9Lp$4rT8wY&6nB1cD3fG5hJ0sA_eU-iO=oP+QzR*tS%uW^vX(yE)",
        DJANGO_ALLOWED_HOSTS="paramedic.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_console_time_zone_that_does_not_exist_stops_the_start():
    with pytest.raises(subprocess.CalledProcessError) as refused:
        read_settings("config.settings.local", DJANGO_TIME_ZONE="Mars/Olympus")
    assert "DJANGO_TIME_ZONE 'Mars/Olympus' is not an IANA time zone" in refused.value.stderr
