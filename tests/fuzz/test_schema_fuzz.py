"""Schema fuzzing: every operation in /api/schema/, as every role (schemathesis).

All four of schemathesis's phases run: examples and coverage (boundary and
invalid values derived from each keyword of the schema), fuzzing (random valid
and invalid data, FUZZ_EXAMPLES per operation) and stateful (chains of calls
whose ids flow from one response into the next request, as a supervisor and as
a paramedic). Requests go in-process to the WSGI app; responses must never be
5xx, must match the documented status codes and shapes, invalid data must be
rejected and a removed resource must stay gone.

The seed is new on every run and printed in the pytest header; FUZZ_SEED=<n>
reproduces a run. Runs on PostgreSQL in CI (marker `postgres`).
"""

import os

import hypothesis.core
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
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
SEED = int(os.environ["FUZZ_SEED"])  # set (and printed) by tests/conftest.py
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "20"))

config = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": EXAMPLES},
        # Schema-valid data may still break a rule no schema keyword expresses (a
        # common password, a status change the state machine refuses: 409): the
        # documented 4xx answer is checked instead of "valid data is accepted".
        # The stateful runs set each role's token on every call, so schemathesis's
        # "invalid auth is refused" probe would see the real token: that rule is
        # the authorization table's (tests/security) and the anonymous role here.
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "ignored_auth": {"enabled": False},
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=config)

pytestmark = [pytest.mark.postgres]


def _bearer(user) -> dict:
    return {"Authorization": client_for(user)._credentials["HTTP_AUTHORIZATION"]}


def _as_generated(case, headers: dict) -> dict:
    """The role's headers, less the Authorization a negative case removed on purpose.

    Schemathesis counts the security scheme's header as a required header and
    sometimes negates a case by dropping it (with another mutation that may not
    reach the wire, e.g. an extra query parameter with no value). Sent with the
    role's token anyway, the request is valid and "accepted": a false finding.
    Without it the case is what the generator meant, an unauthenticated call.
    """
    data = case.meta.phase.data if case.meta is not None else None
    negated = [(getattr(data, "parameter_location", None), getattr(data, "parameter", None))]
    negated += [
        (mutation.parameter_location, mutation.parameter or mutation.original_value)
        for mutation in getattr(data, "mutations", ())
    ]
    if (ParameterLocation.HEADER, "Authorization") in negated:
        return {name: value for name, value in headers.items() if name != "Authorization"}
    return headers


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calls go straight to the WSGI app, whose request signals close old DB
    connections; inside the test's transaction that would close ours. Django's
    own test client disconnects the same handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _world():
    """Users of every role with real objects behind them; their request headers."""
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


@pytest.fixture
def role_headers(db):
    return _world()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_every_operation_as_every_role(case, role_headers):
    for headers in role_headers.values():
        case.call_and_validate(headers=_as_generated(case, headers), checks=CHECKS)


@pytest.mark.parametrize("role", ["supervisor", "paramedic"])
@pytest.mark.django_db
def test_stateful_sequences(role, monkeypatch):
    headers = _world()[role]

    class Machine(schema.as_state_machine()):
        """Each scenario starts from the same world: its writes are rolled back after
        it, so Hypothesis can replay (and shrink) a scenario exactly."""

        def setup(self):
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": _as_generated(case, headers)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            super().validate_response(response, case, additional_checks=CHECKS, **kwargs)

    # The run's seed, as for the other phases (Hypothesis's own --hypothesis-seed).
    monkeypatch.setattr(hypothesis.core, "global_force_seed", SEED)
    Machine.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=False,
            database=None,
        )
    )
