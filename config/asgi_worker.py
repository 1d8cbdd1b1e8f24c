"""Gunicorn's worker class for the ASGI app (Dockerfile, bench/): uvicorn's.

uvicorn rewrites the client address from X-Forwarded-For for peers it trusts
(127.0.0.1 by default). The service decides that itself (TRUSTED_PROXY_COUNT,
core.net, design §16), so the server must pass the socket's address through.
Django has no ASGI lifespan handler: the protocol is off rather than tried and
reported unsupported at every start.
"""

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False, "lifespan": "off"}
