"""The consumer's lenient decoding, pinned against the installed py-amqp.

integrations.consumer replaces two names in py-amqp's serialization module so that a
message py-amqp cannot decode reaches the consumer's checks (and the dead letters)
instead of killing the process in its frame reader. Should an upgrade of py-amqp
rename or stop using them, these fail loudly; the end-to-end cases are in
tests/security/test_hostile_messages.py.
"""

import sys
from datetime import datetime
from unittest import mock

import amqp.serialization
import amqp.utils
import pytest
from amqp.basic_message import Message
from amqp.spec import Basic

from integrations import consumer


@pytest.fixture
def lenient(monkeypatch):
    """The consumer's decoding for this test only (restored afterwards)."""
    for name in ("pstr_t", "loads"):
        monkeypatch.setattr(amqp.serialization, name, getattr(amqp.serialization, name))
    consumer._decode_leniently()


def properties(**props) -> bytes:
    """A content header's properties as another client would put them on the wire."""
    return Message(b"", **props)._serialize_properties()


def decoded(raw: bytes) -> dict:
    message = Message()
    message._load_properties(Basic.CLASS_ID, raw, 0)
    return message.properties


def far_future_timestamp() -> bytes:
    with mock.patch.object(amqp.serialization.calendar, "timegm", return_value=2**40):
        return properties(
            application_headers={"x-when": datetime(2026, 1, 1)}, message_id="m-1", priority=3
        )


def deeply_nested() -> bytes:
    table: dict = {"bottom": 1}
    for _ in range(3000):
        table = {"n": table}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        return properties(application_headers=table, message_id="m-1", priority=3)
    finally:
        sys.setrecursionlimit(limit)


def not_utf8_id() -> bytes:
    return properties(message_id="m-1", priority=3).replace(b"m-1", b"m\xff1")


def test_py_amqp_alone_raises_on_each(monkeypatch):
    """Why the consumer needs this: strict, each one raises in the frame reader. (py-amqp's
    own functions, whether or not a consumer in this process replaced them.)"""
    monkeypatch.setattr(amqp.serialization, "pstr_t", amqp.utils.bytes_to_str)
    monkeypatch.setattr(amqp.serialization, "loads", consumer._strict_loads)
    for raw in (far_future_timestamp(), deeply_nested(), not_utf8_id()):
        with pytest.raises((ValueError, OverflowError, RecursionError, UnicodeDecodeError)):
            decoded(raw)


@pytest.mark.parametrize("raw", [far_future_timestamp, deeply_nested], ids=["timestamp", "depth"])
@pytest.mark.usefixtures("lenient")
def test_undecodable_headers_arrive_as_the_marker_and_later_properties_survive(raw):
    props = decoded(raw())
    assert set(props["application_headers"]) == {consumer.UNDECODABLE_HEADERS}
    assert (props["message_id"], props["priority"]) == ("m-1", 3)


@pytest.mark.usefixtures("lenient")
def test_a_short_string_that_is_not_utf8_arrives_unprintable():
    props = decoded(not_utf8_id())
    assert props["message_id"] == "m\udcff1" and not props["message_id"].isprintable()


@pytest.mark.usefixtures("lenient")
def test_valid_properties_decode_as_before():
    raw = properties(
        application_headers={"ce-id": "abc", "n": {"k": [1, "v"]}, "at": datetime(2026, 1, 1)},
        message_id="m-1",
        content_type="application/json",
    )
    props = decoded(raw)
    assert props["application_headers"] == {
        "ce-id": "abc",
        "n": {"k": [1, "v"]},
        "at": datetime(2026, 1, 1),
    }
    assert (props["message_id"], props["content_type"]) == ("m-1", "application/json")
