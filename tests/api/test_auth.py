"""JWT: obtain, refresh with rotation and blacklist, and what is refused."""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken


def obtain(client, username="B-1", password="correct-horse-battery"):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password})


def test_it_issues_tokens_for_badge_number(paramedic, anon_client):
    response = obtain(anon_client)
    assert response.status_code == 200
    access = response.json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get(f"/api/v1/paramedics/{paramedic.id}").status_code == 200


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_it_names_the_paramedic_in_every_token(paramedic, anon_client):
    """A device learns its own id from its login, and keeps it across refreshes."""
    pair = obtain(anon_client).json()
    assert _claims(pair["access"])["paramedic_id"] == str(paramedic.id)
    assert _claims(pair["refresh"])["paramedic_id"] == str(paramedic.id)

    refreshed = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert _claims(refreshed.json()["access"])["paramedic_id"] == str(paramedic.id)


def test_the_outstanding_token_is_the_token_as_issued(paramedic, anon_client):
    """The claim is in the refresh token before it is recorded as outstanding."""
    refresh = obtain(anon_client).json()["refresh"]
    jti = _claims(refresh)["jti"]
    assert OutstandingToken.objects.get(jti=jti).token == refresh


def test_it_says_no_paramedic_for_other_roles(supervisor, anon_client):
    supervisor.set_password("sup-password-2026")
    supervisor.save()
    pair = obtain(anon_client, username="sup", password="sup-password-2026").json()
    assert _claims(pair["access"])["paramedic_id"] is None


def test_a_device_starts_its_day_from_me(paramedic, anon_client):
    """Login, `GET /me`, then the device's own routes: no id typed in by hand."""
    access = obtain(anon_client).json()["access"]
    device = _client_with(access)
    me = device.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"username": "B-1", "roles": ["paramedic"], "paramedic": str(paramedic.id)}
    assert device.get(f"/api/v1/paramedics/{me.json()['paramedic']}/tasks").status_code == 200


def test_it_refuses_wrong_password(paramedic, anon_client):
    response = obtain(anon_client, password="wrong")
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_it_rotates_and_blacklists_refresh_tokens(paramedic, anon_client):
    refresh = obtain(anon_client).json()["refresh"]

    first = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh})
    assert first.status_code == 200
    assert {"access", "refresh"} <= first.json().keys()
    assert first.json()["refresh"] != refresh

    # The rotated-out token is blacklisted: a replay is refused.
    replay = anon_client.post("/api/v1/auth/token/refresh", {"refresh": refresh})
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"


def test_it_logs_out_by_blacklisting(paramedic, anon_client):
    refresh = obtain(anon_client).json()["refresh"]
    assert (
        anon_client.post("/api/v1/auth/token/blacklist/", {"refresh": refresh}).status_code == 200
    )
    response = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh})
    assert response.status_code == 401


def _client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the forged HS512 token's key
def test_it_refuses_expired_tampered_and_wrong_algorithm_tokens(paramedic):
    url = f"/api/v1/paramedics/{paramedic.id}"

    expired = AccessToken.for_user(paramedic.user)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    assert _client_with(str(expired)).get(url).status_code == 401

    good = str(AccessToken.for_user(paramedic.user))
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert _client_with(tampered).get(url).status_code == 401

    claims = jwt.decode(good, options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert _client_with(unsigned).get(url).status_code == 401

    other_key = jwt.encode(claims, key="x" * 64, algorithm="HS256")
    assert _client_with(other_key).get(url).status_code == 401

    hs512 = jwt.encode(claims, key=settings.SECRET_KEY, algorithm="HS512")
    assert _client_with(hs512).get(url).status_code == 401


def test_refresh_token_is_not_accepted_as_access(paramedic, anon_client):
    refresh = obtain(anon_client).json()["refresh"]
    assert _client_with(refresh).get(f"/api/v1/paramedics/{paramedic.id}").status_code == 401
