"""JWT attacks (OWASP API2): forged, expired, replayed and revoked tokens are 401."""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from core.roles import SUPERVISORS
from tests.factories import UserFactory
from tests.helpers import API, Caller

User = get_user_model()


def _bearer(token: str, scheme: str = "Bearer") -> Caller:
    return Caller(token=token, scheme=scheme)


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _break_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"


def _tampered_signature(user) -> str:
    return _break_signature(str(AccessToken.for_user(user)))


def _claims(user) -> dict:
    return jwt.decode(str(AccessToken.for_user(user)), options={"verify_signature": False})


def _tampered_payload(user) -> str:
    """A doctor's genuine signature under the supervisor's claims."""
    doctor = UserFactory(username="dr-escalate", groups=["doctors"])
    header, _, signature = str(AccessToken.for_user(doctor)).split(".")
    payload = str(AccessToken.for_user(user)).split(".")[1]
    return f"{header}.{payload}.{signature}"


def _alg_none(user) -> str:
    return jwt.encode(_claims(user), key=None, algorithm="none")


def _hs512_right_key(user) -> str:
    return jwt.encode(_claims(user), key=settings.SECRET_KEY, algorithm="HS512")


def _hs256_wrong_key(user) -> str:
    return jwt.encode(_claims(user), key="x" * 64, algorithm="HS256")


def _refresh_as_access(user) -> str:
    return str(RefreshToken.for_user(user))


def _garbage(user) -> str:
    return "not.a.jwt"


BAD_ACCESS_TOKENS = {
    "expired": _expired,
    "tampered_signature": _tampered_signature,
    "tampered_payload": _tampered_payload,
    "alg_none": _alg_none,
    "hs512_right_key": _hs512_right_key,
    "hs256_wrong_key": _hs256_wrong_key,
    "refresh_as_access": _refresh_as_access,
    "garbage": _garbage,
}


@pytest.mark.filterwarnings("ignore:The HMAC key")  # PyJWT on the forged keys
@pytest.mark.parametrize("kind", list(BAD_ACCESS_TOKENS))
def test_bad_access_tokens_are_401(supervisor, paramedic, kind):
    token = BAD_ACCESS_TOKENS[kind](supervisor)  # a supervisor's identity: the worst case
    for url in (f"{API}/paramedics", f"{API}/paramedics/{paramedic.id}", f"{API}/tasks"):
        response = _bearer(token).get(url)
        assert response.status_code == 401, (kind, url, response.content)
        data = response.json()
        assert {"code", "detail"} <= data.keys()
        assert data["code"] == "token_not_valid", data
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_good_token_passes(supervisor):
    """The control for the above: the same request with a genuine token is 200."""
    response = _bearer(str(AccessToken.for_user(supervisor))).get(f"{API}/paramedics")
    assert response.status_code == 200


def test_another_auth_scheme_is_not_authenticated(supervisor):
    token = str(AccessToken.for_user(supervisor))
    for scheme in ("JWT", "Token", "Basic"):
        response = _bearer(token, scheme).get(f"{API}/paramedics")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("fate", ["deleted", "inactive"])
def test_tokens_of_deleted_or_inactive_users_are_401(db, fate):
    user = UserFactory(username="gone-sup", is_staff=True, groups=[SUPERVISORS])
    token = str(AccessToken.for_user(user))
    if fate == "deleted":
        user.delete()
    else:
        User.objects.filter(pk=user.pk).update(is_active=False)
    response = _bearer(token).get(f"{API}/paramedics")
    assert response.status_code == 401, response.content
    data = response.json()
    assert {"code", "detail"} <= data.keys()
    assert data["code"] == {"deleted": "user_not_found", "inactive": "user_inactive"}[fate]


def _obtain(username="B-1", password="correct-horse-battery") -> dict:
    response = Caller().post(
        f"{API}/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(token: str):
    # A server error comes back as a 500 response rather than a raised exception.
    return Caller().post(
        f"{API}/auth/token/refresh/",
        {"refresh": token},
        format="json",
        raise_request_exception=False,
    )


def _assert_401(response, code="token_not_valid"):
    assert response.status_code == 401, response.content
    data = response.json()
    assert {"code", "detail"} <= data.keys()
    assert data["code"] == code, data


def test_rotated_out_refresh_token_is_401(paramedic):
    first = _obtain()["refresh"]
    rotated = _refresh(first)
    assert rotated.status_code == 200
    _assert_401(_refresh(first))
    # The replay did not burn the legitimate successor.
    assert _refresh(rotated.json()["refresh"]).status_code == 200


def test_logged_out_refresh_token_is_401(paramedic):
    refresh = _obtain()["refresh"]
    response = Caller().post(f"{API}/auth/token/blacklist/", {"refresh": refresh})
    assert response.status_code == 200
    _assert_401(_refresh(refresh))


@pytest.mark.filterwarnings("ignore:The HMAC key")
@pytest.mark.parametrize("kind", ["access_as_refresh", "expired", "tampered", "alg_none"])
def test_bad_refresh_tokens_are_401(paramedic, kind):
    pair = _obtain()
    if kind == "access_as_refresh":
        token = pair["access"]
    elif kind == "expired":
        refresh = RefreshToken.for_user(paramedic.user)
        refresh.set_exp(lifetime=-timedelta(seconds=1))
        token = str(refresh)
    elif kind == "tampered":
        token = _break_signature(pair["refresh"])
    else:
        claims = jwt.decode(pair["refresh"], options={"verify_signature": False})
        token = jwt.encode(claims, key=None, algorithm="none")
    _assert_401(_refresh(token))


def test_refresh_token_of_an_inactive_user_is_401(db):
    user = UserFactory(username="leaver")
    refresh = _obtain("leaver")["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    _assert_401(_refresh(refresh), code="no_active_account")


def test_refresh_token_of_a_deleted_user_is_401(db):
    user = UserFactory(username="deleted-later")
    refresh = _obtain("deleted-later")["refresh"]
    user.delete()
    _assert_401(_refresh(refresh), code="no_active_account")
