"""Throttles keyed by the client address of core.net, and the per-account login limit.

DRF's own throttles read X-Forwarded-For when no proxy count is configured, so a
client could pick its identity per request; here the address always comes from
core.net.client_address (the socket, unless TRUSTED_PROXY_COUNT says otherwise).
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.throttling import ScopedRateThrottle

from core.net import client_address


class ScopedClientThrottle(ScopedRateThrottle):
    """ScopedRateThrottle: per user when authenticated, else per client address."""

    def get_ident(self, request) -> str:
        return client_address(request)


class LoginFailures:
    """Failed logins per account: LOGIN_MAX_FAILURES in LOGIN_FAILURE_WINDOW_SECONDS.

    Counted per username (case-insensitive, hashed in the cache key), whoever
    sends them and from wherever: an attacker rotating addresses still hits the
    same account's limit. Only that account is held; other accounts (its
    supervisor's included) log in as usual. The count starts at the first
    failure and the hold lasts until that window ends; a success clears it.
    """

    prefix = "login-failures"

    @classmethod
    def _keys(cls, username: str) -> tuple[str, str]:
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        return f"{cls.prefix}:{digest}:n", f"{cls.prefix}:{digest}:until"

    @classmethod
    def check(cls, username: str) -> None:
        """Raise 429 (with Retry-After) while the account is held."""
        count_key, until_key = cls._keys(username)
        if (cache.get(count_key) or 0) < settings.LOGIN_MAX_FAILURES:
            return
        wait = max(1, int((cache.get(until_key) or time.time()) - time.time()))
        raise Throttled(wait, detail="Too many failed logins for this account; try again later.")

    @classmethod
    def record(cls, username: str) -> None:
        count_key, until_key = cls._keys(username)
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        cache.add(until_key, time.time() + window, window)
        cache.add(count_key, 0, window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr: start a new window
            cache.set(count_key, 1, window)

    @classmethod
    def clear(cls, username: str) -> None:
        cache.delete_many(cls._keys(username))
