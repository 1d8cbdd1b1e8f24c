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

# A station code is shown on screens and typed into imports: printable, no edge spaces.
validate_station_code = RegexValidator(
    r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$",
    "Station codes are printable text without leading or trailing spaces.",
    code="invalid_station_code",
)
