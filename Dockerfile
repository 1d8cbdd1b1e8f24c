# Paramedic Service: one image for web (gunicorn), worker and beat (celery)
# and the one-shot jobs in docker-compose.yml (migrate, createbucket).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    WEB_CONCURRENCY=2

# Unprivileged user; the code stays root-owned so the app cannot rewrite it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first so the layer is cached while only the code changes.
# All pinned packages ship manylinux wheels (psycopg[binary] included): no compiler needed.
COPY requirements/ requirements/
RUN pip install -r requirements/prod.txt

COPY . .

# Production settings require a secret key and allowed hosts to load; these
# build-time dummies exist only for collectstatic and are not kept in the
# image's runtime environment. Real values come from the container env.
ARG DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret
ARG DJANGO_ALLOWED_HOSTS=localhost
RUN mkdir -p var \
    && python manage.py collectstatic --noinput \
    && chown app:app var

USER app

EXPOSE 8000

# /healthz answers when the process is up. Django checks the Host header, so
# send the first DJANGO_ALLOWED_HOSTS entry ('.example.com' -> 'example.com').
# python:slim has no curl; urlopen raises (exit 1) on any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = (os.environ.get('DJANGO_ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=4)"]

# Binding 0.0.0.0 is inside the container only; compose publishes it on 127.0.0.1.
# Workers come from WEB_CONCURRENCY; extra flags can be given in GUNICORN_CMD_ARGS.
# The long timeout leaves room for X-ray uploads (up to XRAY_MAX_UPLOAD_BYTES).
# No server access log: the service logs each request itself, without query strings
# (they may carry signed download tokens) and with the client address rule of
# TRUSTED_PROXY_COUNT (core.middleware.AccessLogMiddleware).
# Workers are uvicorn's (ASGI): an open event stream (design §12) waits on the event
# loop and holds no thread; the REST views run as before, in the worker's threads.
CMD ["gunicorn", "config.asgi:application", "-k", "config.asgi_worker.Worker", "--bind", "0.0.0.0:8000", "--timeout", "120"]
