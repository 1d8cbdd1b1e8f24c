"""Who a user is, in the terms of design §4. One place for each role rule."""

from django.core.exceptions import ObjectDoesNotExist

SUPERVISORS = "supervisors"
SERVICES = "services"
DOCTORS = "doctors"
HOSPITALS = "hospitals"


def _group_names(user) -> frozenset[str]:
    # Cached on the user object: permission checks run several times a request.
    cached = getattr(user, "_role_group_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._role_group_names = cached
    return cached


def is_supervisor(user) -> bool:
    if not user or not user.is_authenticated:
        return False
    return user.is_superuser or (user.is_staff and SUPERVISORS in _group_names(user))


def is_service(user) -> bool:
    return bool(user and user.is_authenticated and SERVICES in _group_names(user))


def is_doctor(user) -> bool:
    return bool(user and user.is_authenticated and DOCTORS in _group_names(user))


def hospital_id_of(user):
    """The id of the hospital this user speaks for (group `hospitals`, tied to one
    hospital, design §21), or None."""
    if not user or not user.is_authenticated or HOSPITALS not in _group_names(user):
        return None
    try:
        return user.hospital_staff.hospital_id
    except ObjectDoesNotExist:
        return None


def roles_of(user) -> list[str]:
    """The caller's roles by name, as `GET /me` reports them (most powerful first)."""
    checks = (
        ("supervisor", is_supervisor),
        ("paramedic", lambda u: paramedic_of(u) is not None),
        ("service", is_service),
        ("doctor", is_doctor),
        ("hospital", lambda u: hospital_id_of(u) is not None),
    )
    return [name for name, holds in checks if holds(user)]


def paramedic_of(user):
    """The Paramedic profile linked to this user, or None."""
    if not user or not user.is_authenticated:
        return None
    try:
        return user.paramedic
    except ObjectDoesNotExist:
        return None
