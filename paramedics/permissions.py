from core.errors import Forbidden

from .models import Paramedic

# Supervisors may change these on any profile; a paramedic on its own only the rest
# (phone, status, last_location): one of these sent changed is 403.
SUPERVISOR_ONLY_FIELDS = frozenset(
    {
        "badge_number",
        "first_name",
        "last_name",
        "email",
        "certification_level",
        "base_station",
        "password",
    }
)


# The attribute holding what the API shows under a field's name.
_ATTRIBUTE = {"base_station": "base_station_code"}


def check_self_update(*, paramedic: Paramedic, data: dict) -> None:
    """Refuse a paramedic's attempt to change a field only supervisors may change.

    Unchanged values pass, so a device can PUT back the object it read; read-only
    and unknown keys are ignored, as everywhere in the API.
    """
    forbidden = sorted(
        key
        for key in SUPERVISOR_ONLY_FIELDS.intersection(data)
        if key == "password" or data[key] != getattr(paramedic, _ATTRIBUTE.get(key, key))
    )
    if forbidden:
        raise Forbidden(
            "A paramedic may change only phone, status and last_location.",
            code="field_not_editable",
            errors={
                key: [{"code": "read_only", "message": "Only a supervisor may change this."}]
                for key in forbidden
            },
        )
