"""Identifiers that come from the Patient Service (design §16).

`request_id` and `patient_id` end up in the Patient Service's URLs. The clients
encode every value as one path segment anyway (integrations.clients.base.url_for);
this pattern also keeps the values plain, so they log, sort and compare sanely.
"""

from django.core.validators import RegexValidator

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*\Z"

validate_external_id = RegexValidator(
    EXTERNAL_ID_PATTERN,
    "Use letters, digits, '.', '_', ':' and '-', starting with a letter or digit.",
    code="invalid_identifier",
)
