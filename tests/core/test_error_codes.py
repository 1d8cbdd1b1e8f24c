"""One registry of error codes (core.error_codes): the docs' table is made from it, and
every code the service can raise is in it. The contract plugin (tests/contract.py)
checks each code the suite actually sees."""

from pathlib import Path

from django.apps import apps

from core.error_codes import API_ERRORS, FIELD_ERRORS, NOT_ANSWERED, markdown
from core.errors import ApplicationError

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_table_is_the_registry():
    assert (ROOT / "docs" / "error-codes.md").read_text() == markdown(), (
        "docs/error-codes.md differs from core/error_codes.py: run `make schema` and "
        "record the change in docs/api-changelog.md"
    )


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_names_a_registered_code_with_its_status():
    assert apps.ready  # every app's errors are imported by now (their views load them)
    unregistered = {
        f"{cls.__module__}.{cls.__qualname__}: {cls.code} {cls.status_code}"
        for cls in _subclasses(ApplicationError)
        if not cls.__module__.startswith("tests.")
        and cls.code not in NOT_ANSWERED
        and (cls.code not in API_ERRORS or API_ERRORS[cls.code].status != cls.status_code)
    }
    assert not unregistered


def test_a_code_is_never_both_kinds_with_different_meanings():
    # Some codes are both (e.g. `shift_overlap`: the request's, and the field's);
    # each table says what it means in its place. None is empty or unexplained.
    for entry in [*API_ERRORS.values(), *FIELD_ERRORS.values()]:
        assert entry.code and entry.meaning.endswith((".", ")")), entry
