"""Event bus message fuzzing (hypothesis): generated properties, headers and bodies
published to a real RabbitMQ, the consumer running as deployed (a separate process)
on PostgreSQL (design §11, §16).

Each example is one message: a message_id and content type of any text (NULs,
escapes, surrogates, too long) or none, headers of every AMQP type under the ce-
names of binary mode and others, and a body that is a CloudEvent with generated
attributes and data, other JSON, or bytes. After each, a valid request is published:
the consumer must still be running and that request must become exactly one task.

The seed is new on every run and printed in the pytest header and summary, and with
a failure; CONSUMER_FUZZ_SEED=<n> reproduces a run, CONSUMER_FUZZ_EXAMPLES (40) sets
the number of examples.
"""

import itertools
import json
import os
import uuid
from datetime import datetime

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st
from kombu import Connection, Exchange

from tasks.inbound import EVENT_TYPE
from tests.fuzz.seeded import run_seeded
from tests.integrations.bus import PatientService, request_body, tasks_for, wait_for
from tests.integrations.workers import ConsumerProcess, broker_url

SEED = int(os.environ["CONSUMER_FUZZ_SEED"])  # set (and printed) by tests/conftest.py
EXAMPLES = int(os.environ.get("CONSUMER_FUZZ_EXAMPLES", "40"))

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

EDGES = ["", "bad\x00id", "\x1b[2J", "a\nb", "\ud800", "é", "x" * 128, "x" * 129, "x" * 255]
texts = st.one_of(st.sampled_from(EDGES), st.text(max_size=40), st.text(max_size=300))
# What AMQP tables can hold (kombu decodes each back to a Python type).
amqp_values = st.recursive(
    st.one_of(
        texts,
        st.binary(max_size=20),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        st.booleans(),
        st.none(),
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
        st.decimals(places=2, min_value=-(10**6), max_value=10**6, allow_nan=False),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
json_values = st.recursive(
    st.one_of(texts, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
CE_HEADERS = ["ce-id", "ce-type", "ce-source", "ce-specversion", "ce-time", "CE-Subject"]
headers = st.dictionaries(
    st.one_of(st.sampled_from(CE_HEADERS), st.text(min_size=1, max_size=20)),
    amqp_values,
    max_size=5,
)
_nonce = itertools.count()


@st.composite
def bodies(draw) -> bytes:
    """A CloudEvent (structured mode) with some attributes or data fields generated,
    or other JSON, or bytes."""
    kind = draw(st.sampled_from(["event", "event", "event", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    data = request_body(f"fuzz-{SEED}-{next(_nonce)}")
    data.update(draw(st.dictionaries(st.sampled_from([*data, "address"]), json_values, max_size=2)))
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/patient-service",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "data": data,
    }
    names = st.sampled_from([*event, "time", "subject", "dataschema", "extension1"])
    event.update(draw(st.dictionaries(names, json_values, max_size=2)))
    return json.dumps(event).encode()


messages = st.fixed_dictionaries(
    {
        "body": bodies(),
        "message_id": st.one_of(st.none(), texts, st.binary(max_size=20)),
        "content_type": st.one_of(
            st.sampled_from(["application/cloudevents+json", "application/json", ""]), texts
        ),
        "headers": headers,
    }
)


class Publisher:
    """Publishes anything (no retries: a message AMQP cannot encode is not an example)."""

    def __init__(self, consumer: ConsumerProcess):
        self.exchange = Exchange(consumer.exchange, type="topic", durable=True, auto_delete=False)
        self.connection = Connection(broker_url(), transport_options={"confirm_publish": True})

    def publish(self, message: dict) -> bool:
        properties = {k: v for k, v in message.items() if k != "body" and v is not None}
        try:
            self.connection.Producer().publish(
                message["body"],
                exchange=self.exchange,
                routing_key="emergency.requested",
                delivery_mode=2,
                **properties,
            )
        except Exception:  # the client refused to encode it (or the broker the frame)
            self.connection.release()
            self.connection = Connection(broker_url(), transport_options={"confirm_publish": True})
            return False
        return True

    def close(self) -> None:
        self.connection.release()


def test_after_any_message_the_consumer_runs_and_the_next_request_is_one_task(
    tmp_path, service_user
):
    consumer = ConsumerProcess(tmp_path, username=service_user.username)
    patient_service = PatientService(consumer)
    publisher = Publisher(consumer)
    consumer.start()

    @given(message=messages)
    def check(message):
        if not publisher.publish(message):
            reject()
        request_id = f"next-{SEED}-{next(_nonce)}"
        patient_service.request(request_body(request_id))
        wait_for(lambda: tasks_for(request_id), timeout=15, what=f"the task of {request_id}")
        assert consumer.process.poll() is None, consumer.output()[-3000:]
        assert tasks_for(request_id) == 1

    try:
        run_seeded(
            check,
            seed_value=SEED,
            examples=EXAMPLES,
            repeat_with=f"consumer fuzzing: CONSUMER_FUZZ_SEED={SEED} repeats this run",
            notes=[lambda: f"the consumer's log: {consumer.output()[-2000:]}"],
        )
    finally:
        publisher.close()
        consumer.stop()
        patient_service.close()
