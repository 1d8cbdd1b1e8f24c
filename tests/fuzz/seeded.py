"""One way to run a fuzzer's property: with this run's seed (tests/conftest.py draws
and prints it), no example database, and a failure that names the seed repeating it."""

from hypothesis import HealthCheck, seed, settings


def run_seeded(check, *, seed_value: int, examples: int, repeat_with: str, notes=()) -> None:
    """Run the @given property `check`; on failure add `repeat_with` (e.g.
    "DICOM_FUZZ_SEED=123 repeats this run") and `notes` (callables, read only then)."""
    try:
        seed(seed_value)(
            settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            )(check)
        )()
    except BaseException as exc:
        exc.add_note(repeat_with)
        for note in notes:
            exc.add_note(note())
        raise
