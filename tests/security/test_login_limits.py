"""Login throttling that a client cannot talk its way around (design §16).

The client address comes from the socket unless TRUSTED_PROXY_COUNT says how many
proxies append X-Forwarded-For; failed logins are also limited per account, and
holding one account never holds another (its supervisor's, say).
"""

import pytest
from django.test import RequestFactory

from core.net import client_address
from tests.helpers import API, Caller

TOKEN = f"{API}/auth/token/"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def login(username, password, *, address="10.0.0.1", forwarded=None):
    headers = {"REMOTE_ADDR": address}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return Caller().post(
        TOKEN, {"username": username, "password": password}, format="json", **headers
    )


@pytest.fixture
def limits(settings, throttle_rates):
    throttle_rates(auth="20/min")
    settings.LOGIN_MAX_FAILURES = 10
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900


def test_rotating_x_forwarded_for_does_not_reset_the_address_limit(limits, paramedic):
    statuses = [
        login(f"nobody-{n}", "wrong", forwarded=f"203.0.113.{n}").status_code for n in range(100)
    ]
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}
    # The right password with a fresh header: the real address is still held.
    response = login("B-1", PASSWORD, forwarded="198.51.100.77")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_failed_logins_hold_the_account_from_any_address(limits, paramedic):
    for n in range(10):
        assert login("B-1", "wrong", address=f"10.1.0.{n}").status_code == 401
    # The 11th try, even with the right password and from a new address, is held.
    response = login("b-1", PASSWORD, address="10.2.0.1")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 900


def test_a_held_account_does_not_hold_its_supervisor(limits, paramedic, supervisor):
    for _ in range(10):
        login("B-1", "wrong", address="10.3.0.1")
    assert login("B-1", PASSWORD, address="10.3.0.2").status_code == 429
    response = login(supervisor.username, PASSWORD, address="10.3.0.2")
    assert response.status_code == 200, response.content


def test_a_success_clears_the_failures(limits, paramedic):
    for _ in range(9):
        login("B-1", "wrong")
    assert login("B-1", PASSWORD).status_code == 200
    for _ in range(9):
        assert login("B-1", "wrong").status_code == 401
    assert login("B-1", PASSWORD).status_code == 200


class TestClientAddress:
    def _request(self, remote, forwarded=None):
        headers = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            headers["HTTP_X_FORWARDED_FOR"] = forwarded
        return RequestFactory().get("/", **headers)

    def test_without_trusted_proxies_the_socket_decides(self, settings):
        settings.TRUSTED_PROXY_COUNT = 0
        request = self._request("10.0.0.5", "1.2.3.4, 5.6.7.8")
        assert client_address(request) == "10.0.0.5"

    @pytest.mark.parametrize(
        ("count", "forwarded", "expected"),
        [
            (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # spoofed entry to the left ignored
            (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
            (2, "203.0.113.9", "203.0.113.9"),  # fewer entries than proxies
            (1, "not-an-ip", "10.0.0.5"),
            (1, "", "10.0.0.5"),
        ],
    )
    def test_trusted_proxies_are_counted_from_the_right(self, settings, count, forwarded, expected):
        settings.TRUSTED_PROXY_COUNT = count
        assert client_address(self._request("10.0.0.5", forwarded)) == expected

    def test_behind_a_trusted_proxy_throttles_follow_the_forwarded_client(
        self, settings, limits, paramedic
    ):
        settings.TRUSTED_PROXY_COUNT = 1
        for n in range(20):
            login(f"x-{n}", "wrong", address="10.9.9.9", forwarded=f"6.6.6.{n}, 203.0.113.5")
        held = login("B-1", PASSWORD, address="10.9.9.9", forwarded="203.0.113.5")
        assert held.status_code == 429
        other_client = login("B-1", PASSWORD, address="10.9.9.9", forwarded="203.0.113.6")
        assert other_client.status_code == 200
