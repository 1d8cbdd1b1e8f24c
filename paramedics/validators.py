"""The rules for a paramedic's identifiers, used by the model, the API and the admin."""

from django.core.validators import RegexValidator

# A badge number is also the paramedic's login username.
validate_badge_number = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "Badge numbers use letters, digits, '.', '_' and '-'.",
    code="invalid_badge_number",
)

validate_e164_phone = RegexValidator(
    regex=r"^\+[1-9]\d{1,14}$",
    message="Enter the phone number in E.164 format, e.g. +4915112345678.",
    code="invalid_phone",
)
