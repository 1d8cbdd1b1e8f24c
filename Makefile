# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make run    venv, install, migrate, serve http://127.0.0.1:8000
#   make test   venv, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Parallel workers for the suite; 0 runs in one process.
TEST_WORKERS ?= 2

.PHONY: run test lint format worker beat consumer pacs migrate superuser schema asyncapi-check clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: re-install only when the pinned requirements change.
$(VENV)/.installed-base: requirements/base.txt requirements/prod.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/prod.txt
	@touch $@

$(VENV)/.installed-dev: requirements/base.txt requirements/prod.txt requirements/roads.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	@touch $@

migrate: $(VENV)/.installed-base
	$(BIN)/python manage.py migrate --noinput

# The project's own code and templates, which the reloader watches (not .venv, var/, tests/).
RELOAD_DIRS := api config core demo integrations paramedics tasks templates xrays

# The ASGI server, as in production (event streams hold no thread), reloading on edits
# to the project's code. The service writes its own access log (paramedic.access).
run: migrate
	$(LOCAL) $(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --no-proxy-headers \
		--no-access-log --lifespan off --reload $(foreach dir,$(RELOAD_DIRS),--reload-dir $(dir)) \
		--reload-include "*.html"

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/vulture

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Server entry points default to production settings; these run locally.
LOCAL := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local}

worker: $(VENV)/.installed-base
	$(LOCAL) $(BIN)/celery -A config.celery_app worker --loglevel=INFO --concurrency=2

beat: $(VENV)/.installed-base
	$(LOCAL) $(BIN)/celery -A config.celery_app beat --loglevel=INFO --schedule=var/celerybeat-schedule

# Emergency requests from the event bus (needs EVENT_BUS_URL).
consumer: $(VENV)/.installed-base
	$(LOCAL) $(BIN)/python manage.py consume_emergency_requests

# A local PACS for doctor review (design §15): Orthanc with DICOMweb on 127.0.0.1:8042
# (Debian: apt-get install orthanc orthanc-dicomweb), in the foreground, data under
# var/orthanc. Run `make run` beside it with the XRAY_SERVICE_* variables README shows.
PACS_PORT ?= 8042
PACS_USER ?= xray
PACS_PASSWORD ?= xraypass
pacs:
	@mkdir -p var/orthanc
	@printf '%s\n' '{"Name": "paramedic-pacs", "StorageDirectory": "$(CURDIR)/var/orthanc/db",' \
	  ' "IndexDirectory": "$(CURDIR)/var/orthanc/db", "HttpPort": $(PACS_PORT),' \
	  ' "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],' \
	  ' "RemoteAccessAllowed": false, "AuthenticationEnabled": true,' \
	  ' "RegisteredUsers": {"$(PACS_USER)": "$(PACS_PASSWORD)"}, "DicomServerEnabled": false,' \
	  ' "WebDavEnabled": false, "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}}' \
	  > var/orthanc/orthanc.json
	/usr/sbin/Orthanc var/orthanc/orthanc.json

superuser: migrate
	$(BIN)/python manage.py createsuperuser

# The committed contracts: docs/openapi.yaml (HTTP), docs/asyncapi.yaml (event bus) and
# docs/error-codes.md (core/error_codes.py); the tests fail when the code describes
# something else.
schema: $(VENV)/.installed-base
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml
	$(BIN)/python manage.py asyncapi --file docs/asyncapi.yaml
	$(BIN)/python manage.py error_codes --file docs/error-codes.md

# docs/asyncapi.yaml checked by AsyncAPI's own parser (Node.js, pinned in tools/asyncapi).
asyncapi-check:
	cd tools/asyncapi && npm ci --no-audit --no-fund --silent
	node tools/asyncapi/validate.mjs docs/asyncapi.yaml

clean:
	rm -rf $(VENV) var/static .pytest_cache
