"""Schema fuzzing: every operation in /api/schema/, as every role (schemathesis).

Valid and invalid data is generated from the OpenAPI schema and sent in-process
to the WSGI app; the responses must never be 5xx, must match the documented
status codes and shapes, invalid data must be rejected, and a removed resource
must stay gone. Runs on PostgreSQL in CI (marker `postgres`).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from config.wsgi import application
from tests.factories import ParamedicFactory, TaskFactory, UserFactory, put_on_task
from tests.helpers import client_for

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    negative_data_rejection,
    use_after_free,
]
EXAMPLES = 12

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _bearer(user) -> dict:
    token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
    return {"Authorization": token}


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calls go straight to the WSGI app, whose request signals close old DB
    connections; inside the test's transaction that would close ours. Django's
    own test client disconnects the same handler."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def role_headers(db):
    """Headers for each role, with real objects behind them."""
    supervisor = UserFactory(username="fuzz-sup", is_staff=True, groups=["supervisors"])
    service = UserFactory(username="fuzz-svc", groups=["services"])
    doctor = UserFactory(username="fuzz-doc", groups=["doctors"])
    medic = ParamedicFactory(badge_number="FUZZ-1")
    put_on_task(medic, created_by=service)
    TaskFactory(created_by=service)
    return {
        "anonymous": {},
        "supervisor": _bearer(supervisor),
        "service": _bearer(service),
        "doctor": _bearer(doctor),
        "paramedic": _bearer(medic.user),
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_as_every_role(case, role_headers):
    for headers in role_headers.values():
        case.call_and_validate(headers=headers, checks=CHECKS)
