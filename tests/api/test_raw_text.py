"""A string's documented length and pattern hold for the text the client sent.

DRF trims surrounding whitespace before it validates, so 255 characters and a
space passed `maxLength: 255` on POST /tasks (found by the schema fuzzer, FUZZ_SEED
22445977), and " abc" passed a pattern that must start with a letter. Every
writable string field of the API's input serializers is one of api.fields' strict
fields, which check the raw text too.
"""

import importlib
import inspect

import pytest
from django.core.validators import RegexValidator
from rest_framework import serializers

from api.fields import _StringOnly
from tasks.models import EmergencyTask
from tests.helpers import API, Caller, assert_json_error, new_task_body

APPS = ("api.auth", "paramedics.serializers", "tasks.serializers", "xrays.serializers")


def _constrained_string_fields():
    """(serializer, name, field) of every writable string field with a length or a
    pattern in the API's serializers (those trimming could stretch)."""
    for app in APPS:
        module = importlib.import_module(app)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, serializers.Serializer) or cls.__module__ != module.__name__:
                continue
            for name, field in cls().fields.items():
                writable = isinstance(field, serializers.CharField) and not field.read_only
                patterned = any(isinstance(v, RegexValidator) for v in field.validators)
                if writable and (field.max_length or patterned):
                    yield cls.__name__, name, field


FIELDS = list(_constrained_string_fields())


def test_the_apps_have_constrained_string_fields():
    assert len(FIELDS) > 15


@pytest.mark.parametrize(("serializer", "name", "field"), FIELDS, ids=lambda v: str(v))
def test_every_constrained_string_field_is_strict(serializer, name, field):
    assert isinstance(field, _StringOnly), f"{serializer}.{name} is a plain DRF field"


LIMITED = [(s, n, f) for s, n, f in FIELDS if f.max_length]


def _longest_valid(name: str, length: int) -> str:
    if name == "email":  # labels of at most 63 characters
        local, domain = "a" * 64, "b" * 63 + "." + "c" * 63 + "."
        return local + "@" + domain + "d" * (length - len(local) - 1 - len(domain))
    if name == "phone":
        return "+4" + "9" * (length - 2)
    return "x" * length


@pytest.mark.parametrize(("serializer", "name", "field"), LIMITED, ids=lambda v: str(v))
@pytest.mark.parametrize("padding", [" ", "\n", "\t "])
def test_whitespace_does_not_stretch_the_length_limit(serializer, name, field, padding):
    longest = _longest_valid(name, field.max_length)
    assert field.run_validation(longest) == longest
    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation(longest + padding)
    assert "max_length" in {error.code for error in refused.value.detail}


def test_text_within_the_limit_is_kept_trimmed():
    field = serializers.CharField()  # the behaviour the strict field keeps
    strict = next(f for s, n, f in FIELDS if s == "TaskCreateSerializer" and n == "address")
    assert strict.run_validation("  Main St 1  ") == field.run_validation("  Main St 1  ")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"address": "a" * 255 + " "}, "address"),
        ({"description": "d" * 5000 + "\n"}, "description"),
        ({"request_id": " req-1"}, "request_id"),
        ({"patient_id": "patient-77 "}, "patient_id"),
    ],
)
def test_post_tasks_refuses_text_only_valid_once_trimmed(service_user, change, field):
    response = Caller(service_user).post(f"{API}/tasks", {**new_task_body(), **change})
    body = assert_json_error(response, 400, "invalid")
    assert field in body["errors"]
    assert not EmergencyTask.objects.exists()
