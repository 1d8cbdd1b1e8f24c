import pytest

from tests.integrations.stand_ins import NOTIFICATION, PATIENT, XRAY, start_stand_ins


@pytest.fixture
def stand_ins(settings):
    """The three outside services, live on 127.0.0.1, configured in settings."""
    services = start_stand_ins()
    settings.PATIENT_SERVICE_URL = services.url(PATIENT)
    settings.NOTIFICATION_SERVICE_URL = services.url(NOTIFICATION)
    settings.XRAY_SERVICE_URL = services.url(XRAY)
    settings.INTEGRATION_TOKEN = "integration-secret-token"
    yield services
    services.server.clear()
    services.server.stop()
