"""Strict JSON input fields: a value of the wrong JSON type is invalid input.

DRF coerces by default (0 becomes "0", false becomes 0.0, 5 becomes a UUID);
an API that documents types should reject them instead (schema fuzzing checks it).
"""

from rest_framework import serializers


class _StringOnly:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StringOnly, serializers.CharField):
    default_error_messages = {"invalid": "Not a valid string."}


class StrictEmailField(_StringOnly, serializers.EmailField):
    pass


class StrictUUIDField(_StringOnly, serializers.UUIDField):
    pass


class StrictFloatField(serializers.FloatField):
    """A JSON number only: not a boolean (float(False) is 0.0) and not a string."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)
