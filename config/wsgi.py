import os

from django.core.wsgi import get_wsgi_application

# A server entry point: production unless told otherwise, so a bare
# `gunicorn config.wsgi` never runs with DEBUG and the repository's key (design §16).
# `make run` (manage.py runserver) chooses the local settings explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()
