"""Access to a long-lived response, asked again while it is open.

A Server-Sent Events stream is authorised when it opens and then held for up to an
hour. So that it ends when its access does (logout, a password change, deactivation,
removal, the loss of the role that opened it), its view asks, every heartbeat and
before each event, what a new request with the same credentials would be answered
now. The answer comes from the view's own authentication and permission classes and
its own object lookup: the rules every other request meets, in the one place they
live, so a rule added there holds for open streams too.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.views import APIView

# Django's own middleware prepares the new request as it prepares every request:
# the session from its cookie, then the user (lazily) from the session.
_SESSIONS = SessionMiddleware(lambda request: None)
_USERS = AuthenticationMiddleware(lambda request: None)


@dataclass(frozen=True)
class Credentials:
    """What authenticated a request: its Authorization header and its session
    cookie (the admin console's). Hashable: streams with the same credentials share
    one check."""

    authorization: str = ""
    session_key: str = ""

    @classmethod
    def of(cls, request: HttpRequest) -> "Credentials":
        return cls(
            authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            session_key=request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""),
        )

    def new_request(self, path: str) -> HttpRequest:
        """A GET of `path` carrying these credentials and nothing else."""
        request = HttpRequest()
        request.method = "GET"
        request.path = request.path_info = path
        if self.authorization:
            request.META["HTTP_AUTHORIZATION"] = self.authorization
        if self.session_key:
            request.COOKIES[settings.SESSION_COOKIE_NAME] = self.session_key
        _SESSIONS.process_request(request)
        _USERS.process_request(request)
        return request


def refusal(
    view_class: type[APIView],
    credentials: Credentials,
    *,
    path: str,
    kwargs: dict,
    lookup: Callable[[APIView, Request], object],
) -> str | None:
    """The error code a new request with `credentials` would be answered now
    (`password_changed`, `user_inactive`, `not_authenticated`, `permission_denied`,
    `not_found`, ...), or None while it would be served.

    Runs the view's authentication and permission checks, then `lookup(view,
    request)` (the view's object scoping), as DRF runs them for a request; errors are
    turned into codes by the view's exception handler, the API's one.
    """
    view = view_class(args=(), kwargs=kwargs, format_kwarg=None)
    request = view.request = view.initialize_request(credentials.new_request(path), **kwargs)
    try:
        view.perform_authentication(request)
        view.check_permissions(request)
        lookup(view, request)
    except Exception as exc:  # whatever the view would answer; re-raised if it answers none
        return view.handle_exception(exc).data["code"]
    return None
