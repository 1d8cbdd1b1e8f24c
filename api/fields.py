"""Strict JSON input fields: a value of the wrong JSON type is invalid input.

DRF coerces by default (0 becomes "0", false becomes 0.0, 5 becomes a UUID);
an API that documents types should reject them instead (schema fuzzing checks it).
"""

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import empty


class _StringOnly:
    """A JSON string only, whose rules hold for the text as sent.

    DRF trims surrounding whitespace first and validates what is left, so 255
    characters and a space passed `maxLength: 255`, and " abc" passed a pattern
    that must start with a letter. The schema documents the raw string: its
    length and pattern are checked on that too (the value kept is still trimmed).
    """

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)

    def run_validation(self, data=empty):
        value = super().run_validation(data)
        if isinstance(data, str) and value != data:
            self.run_validators(data)
        return value


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


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: not a boolean, a float or a string of digits."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false only: not "yes", "1" or 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class WholeObjectSerializer(serializers.Serializer):
    """A nested value object ({lat, lon}, ...) is replaced whole, never patched.

    DRF skips missing fields of *every* nested serializer in a PATCH (partial
    applies to the whole tree), so `{"last_location": {"lat": 50}}` would reach
    the service without `lon`. Here a nested object's required fields are
    required in PATCH as in POST.
    """

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        missing = [
            name
            for name, field in self.fields.items()
            if field.required and not field.read_only and field.source not in value
        ]
        if missing:
            raise serializers.ValidationError(
                {
                    name: [ErrorDetail("This field is required.", code="required")]
                    for name in missing
                }
            )
        return value


class QueryParamsSerializer(serializers.Serializer):
    """Validates an operation's own query parameters (documented from its fields).

    As for filters (api.filters.StrictFilterSet), a parameter given with an empty
    value is invalid input rather than "use the default".
    """

    def to_internal_value(self, data):
        empty = [name for name in self.fields if hasattr(data, "get") and data.get(name) == ""]
        if empty:
            raise serializers.ValidationError(
                {
                    name: [ErrorDetail("This parameter needs a value.", code="blank")]
                    for name in empty
                }
            )
        return super().to_internal_value(data)
