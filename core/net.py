"""Who is calling: the client address used by throttles and logs (design §16)."""

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """The caller's IP address.

    The socket's peer (REMOTE_ADDR), unless TRUSTED_PROXY_COUNT says how many
    proxies in front of the service append to X-Forwarded-For: then the entry
    the outermost trusted proxy wrote. Entries to the left of it were written by
    the client and are never believed; a malformed entry falls back to the peer.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return peer
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if not forwarded:
        return peer
    candidate = forwarded[-min(trusted, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer
