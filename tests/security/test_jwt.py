"""JWT attacks (OWASP API2): forged, expired, replayed and revoked tokens are 401."""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from core.roles import SUPERVISORS
from tests.factories import UserFactory
from tests.helpers import API, Caller, in_parallel

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


# --- Sessions end when the password changes (design §16) ----------------------------


def _change_password_by_api(supervisor, paramedic):
    response = Caller(supervisor).patch(
        f"{API}/paramedics/{paramedic.id}", {"password": "brand-new-pass-2026"}, format="json"
    )
    assert response.status_code == 200, response.content


def _change_password_by_admin(supervisor, paramedic):
    client = Client()
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:paramedics_paramedic_change", args=[paramedic.pk]),
        {
            "badge_number": paramedic.badge_number,
            "first_name": paramedic.first_name,
            "last_name": paramedic.last_name,
            "email": paramedic.email,
            "phone": paramedic.phone,
            "certification_level": paramedic.certification_level,
            "status": paramedic.status,
            "base_station": paramedic.base_station_code,
            "password": "brand-new-pass-2026",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def _change_password_by_hand(supervisor, paramedic):
    """What `manage.py changepassword` and Django's own forms do."""
    user = User.objects.get(pk=paramedic.user.pk)
    user.set_password("brand-new-pass-2026")
    user.save()


@pytest.mark.parametrize(
    "change", [_change_password_by_api, _change_password_by_admin, _change_password_by_hand]
)
def test_a_password_change_ends_every_session(supervisor, paramedic, change):
    first, second = _obtain(), _obtain()  # two devices
    url = f"{API}/paramedics/{paramedic.id}"
    assert _bearer(first["access"]).get(url).status_code == 200

    change(supervisor, paramedic)

    for pair in (first, second):
        _assert_401(_refresh(pair["refresh"]), code="password_changed")
        _assert_401(_bearer(pair["access"]).get(url), code="password_changed")
    # The new password opens a new session, which works.
    fresh = _obtain(password="brand-new-pass-2026")
    assert _bearer(fresh["access"]).get(url).status_code == 200
    assert _refresh(fresh["refresh"]).status_code == 200


def test_deactivation_ends_every_session(supervisor, paramedic):
    pair = _obtain()
    User.objects.filter(pk=paramedic.user.pk).update(is_active=False)
    _assert_401(_refresh(pair["refresh"]), code="no_active_account")
    _assert_401(_bearer(pair["access"]).get(f"{API}/paramedics/{paramedic.id}"), "user_inactive")


def test_a_token_without_the_session_claim_is_refused(paramedic):
    """Tokens minted without `sv` (before this rule existed) end too."""
    access, refresh = AccessToken.for_user(paramedic.user), RefreshToken.for_user(paramedic.user)
    del access["sv"], refresh["sv"]
    _assert_401(_bearer(str(access)).get(f"{API}/tasks"), code="password_changed")
    _assert_401(_refresh(str(refresh)), code="password_changed")


# --- One refresh token, one new pair (design §16) -----------------------------------


def test_a_refresh_token_is_spent_once(paramedic):
    refresh = _obtain()["refresh"]
    assert _refresh(refresh).status_code == 200
    _assert_401(_refresh(refresh))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_refreshes_of_one_token_yield_one_pair():
    UserFactory(username="racer")
    refresh = _obtain("racer")["refresh"]

    def spend(i):
        return APIClient().post(f"{API}/auth/token/refresh/", {"refresh": refresh}, format="json")

    responses = in_parallel(20, spend)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 19, statuses
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert OutstandingToken.objects.filter(token=winner["refresh"]).count() == 1
    assert BlacklistedToken.objects.filter(token__token=refresh).count() == 1
    # Exactly one new refresh token exists besides the spent one.
    assert OutstandingToken.objects.exclude(token=refresh).count() == 1
