"""Django's ASGI handler, except that a long-lived response gets no thread of its own.

Django runs a request's sync code (its middleware, a sync view) in a thread kept for
that request (asgiref's ThreadSensitiveContext) until the response has been sent: for
a Server-Sent Events stream that is an idle thread per device for hours. A view that
marks itself `long_lived` does only short sync steps (authentication, the view, one
database read per event), so its requests run outside that context: their sync steps
take turns on the process's one shared sync thread, and an open stream waits on the
event loop alone. Every other request is handled exactly as Django does.
"""

import django
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve


def is_long_lived(scope) -> bool:
    path = scope["path"].removeprefix(scope.get("root_path", ""))  # as Django's path_info
    try:
        match = resolve(path or "/")
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return bool(getattr(view_class, "long_lived", False))


class Handler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and is_long_lived(scope):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def get_asgi_application() -> Handler:
    """As django.core.asgi.get_asgi_application, with this handler."""
    django.setup(set_prefix=False)
    return Handler()
