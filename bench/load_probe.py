"""In-process measurements for bench/load.py: query counts, CPU per call, a profile.

    LOAD_QC_PARAMEDIC=<id> LOAD_PROFILE_CALLS=500 DATABASE_URL=... \
        .venv/bin/python bench/load_probe.py

Run by bench/load.py after the load, on the database it seeded (`manage.py
seed_load`), with the Django test client (calling close_old_connections()
first, as gunicorn's request_started does). Prints LOAD_QUERIES, LOAD_TIMINGS
and LOAD_PROFILE/LOAD_STAGE/LOAD_TOTTIME blocks that bench/load.py reads.
"""

import cProfile
import io
import json
import logging
import os
import pstats
import time

import common

common.setup_django({}, migrate=False)

# Imported after Django is set up (models need the app registry).
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from PIL import Image  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from paramedics.models import Paramedic  # noqa: E402
from tasks.models import EmergencyTask  # noqa: E402

logging.disable(logging.WARNING)
User = get_user_model()
sup = User.objects.get(username="load-supervisor")
qc = Paramedic.objects.select_related("user").get(pk=os.environ["LOAD_QC_PARAMEDIC"])
client = Client(HTTP_HOST="127.0.0.1")
SUP = {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(sup)}"}
ME = {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(qc.user)}"}
API = "/api/v1"
POLL = f"{API}/paramedics/{qc.pk}/tasks?status=assigned&status=in_progress"
rows = []


def count(endpoint, case, method, path, headers, data=None, **extra):
    call = getattr(client, method)
    with CaptureQueriesContext(connection) as captured:
        if method == "post" and data is not None and not extra.get("multipart"):
            response = call(path, data=json.dumps(data), content_type="application/json", **headers)
        elif method == "post":
            response = call(path, data=data, **headers)
        else:
            response = call(path, **headers)
    assert 200 <= response.status_code < 300, (path, response.status_code, response.content[:300])
    is_json = response.get("Content-Type", "").startswith("application/json")
    body = response.json() if is_json else {}
    rows.append([endpoint, case, len(captured.captured_queries)])
    return body


count("GET /healthz", "-", "get", "/healthz", {})
count("GET /paramedics/{id}/tasks", "filter active, 0 rows", "get", POLL, ME)
n_hist = EmergencyTask.objects.filter(paramedic=qc).count()
count(
    "GET /paramedics/{id}/tasks",
    f"no filter, {n_hist} rows",
    "get",
    f"{API}/paramedics/{qc.pk}/tasks",
    ME,
)
count("GET /paramedics/{id}/tasks", "supervisor, filter active", "get", POLL, SUP)
count("GET /tasks?page_size=50", "page_size=5", "get", f"{API}/tasks?page_size=5", SUP)
count("GET /tasks?page_size=50", "page_size=50", "get", f"{API}/tasks?page_size=50", SUP)
count(
    "GET /paramedics?status=available",
    "page_size=5",
    "get",
    f"{API}/paramedics?status=available&page_size=5",
    SUP,
)
count(
    "GET /paramedics?status=available",
    "page_size=50",
    "get",
    f"{API}/paramedics?status=available&page_size=50",
    SUP,
)
task = count(
    "POST /tasks",
    "new request",
    "post",
    f"{API}/tasks",
    SUP,
    {
        "request_id": "load-inprocess-1",
        "patient_id": "p-1",
        "priority": "urgent",
        "location": {"lat": 52.5, "lon": 13.4},
    },
)
count(
    "POST /tasks/{id}/assign",
    "paramedic given",
    "post",
    f"{API}/tasks/{task['id']}/assign",
    SUP,
    {"paramedic": str(qc.pk)},
)
count("GET /paramedics/{id}/tasks", "filter active, 1 row", "get", POLL, ME)
count(
    "POST /paramedics/{id}/tasks/{task_id}",
    "start",
    "post",
    f"{API}/paramedics/{qc.pk}/tasks/{task['id']}",
    ME,
    {"status": "in_progress"},
)
buffer = io.BytesIO()
Image.frombytes("L", (48, 48), os.urandom(48 * 48)).save(buffer, "PNG")
buffer.name = "xray.png"
buffer.seek(0)
count(
    "POST /paramedics/{id}/xray",
    "48x48 PNG",
    "post",
    f"{API}/paramedics/{qc.pk}/xray",
    ME,
    {"image": buffer, "task": task["id"]},
    multipart=True,
)
count(
    "POST /paramedics/{id}/tasks/{task_id}",
    "complete",
    "post",
    f"{API}/paramedics/{qc.pk}/tasks/{task['id']}",
    ME,
    {"status": "completed"},
)
print("LOAD_QUERIES " + json.dumps(rows))

# --- profile -------------------------------------------------------------------
# The polling paramedic gets a task again, so its list has the usual one row.
task = count(
    "POST /tasks",
    "new request",
    "post",
    f"{API}/tasks",
    SUP,
    {
        "request_id": "load-inprocess-2",
        "patient_id": "p-2",
        "priority": "urgent",
        "location": {"lat": 52.5, "lon": 13.4},
    },
)
count(
    "POST /tasks/{id}/assign",
    "paramedic given",
    "post",
    f"{API}/tasks/{task['id']}/assign",
    SUP,
    {"paramedic": str(qc.pk)},
)
N = int(os.environ["LOAD_PROFILE_CALLS"])
TARGETS = {
    "GET /healthz": ("/healthz", {}),
    "GET /paramedics/{id}/tasks": (POLL, ME),
    "GET /tasks?page_size=50": (f"{API}/tasks?page_size=50", SUP),
}


def call(path, headers):
    close_old_connections()  # as gunicorn's request_started does: the health check runs
    return client.get(path, **headers)


timings = {}
for name, (path, headers) in TARGETS.items():
    for _ in range(50):  # warm-up
        call(path, headers)
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(N):
        call(path, headers)
    timings[name] = {
        "cpu": (time.thread_time() - cpu) / N * 1000,
        "wall": (time.perf_counter() - wall) / N * 1000,
    }
print("LOAD_TIMINGS " + json.dumps({"calls": N, "timings": timings}))

# Cumulative time per call of the stages a request goes through (ms, under cProfile).
STAGES = [
    ("whole request (test client)", "django/test/client.py", "get"),
    ("  JWTAuthentication.authenticate", "simplejwt/authentication.py", "authenticate"),
    ("    get_user: SELECT auth_user", "simplejwt/authentication.py", "get_user"),
    ("  check_permissions (role checks)", "rest_framework/views.py", "check_permissions"),
    ("    is_supervisor: SELECT groups", "core/roles.py", "_group_names"),
    ("    paramedic_of: SELECT paramedic", "core/roles.py", "paramedic_of"),
    ("  _paramedic: get_object_or_404", "tasks/views.py", "_paramedic"),
    ("  filter_queryset (django-filter)", "rest_framework/generics.py", "filter_queryset"),
    ("  paginate_queryset: COUNT + page", "rest_framework/generics.py", "paginate_queryset"),
    ("    Paginator.count: SELECT COUNT", "django/core/paginator.py", "count"),
    ("  serializer .data (TaskSerializer)", "rest_framework/serializers.py", "data"),
    ("    ModelSerializer.get_fields", "rest_framework/serializers.py", "get_fields"),
    ("  JSONRenderer.render", "rest_framework/renderers.py", "render"),
    ("all queries: SQLCompiler.as_sql", "django/db/models/sql/compiler.py", "as_sql"),
    ("all queries: CursorWrapper._execute", "django/db/backends/utils.py", "_execute"),
    ("health check: is_usable (SELECT 1)", "django/db/backends/postgresql/base.py", "is_usable"),
]
for name in ("GET /paramedics/{id}/tasks", "GET /tasks?page_size=50"):
    path, headers = TARGETS[name]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(N):
        call(path, headers)
    profiler.disable()
    stats = pstats.Stats(profiler)
    per_call = stats.total_tt / N * 1000
    print(f"LOAD_PROFILE {name} ({N} calls, {per_call:.2f} ms per call under cProfile)")
    for label, suffix, func_name in STAGES:
        best = None
        for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if func == func_name and filename.endswith(suffix) and (best is None or ct > best[1]):
                best = (nc, ct)
        if best:
            print(f"LOAD_STAGE {label:<40} {best[1] / N * 1000:7.2f} ms {best[0] / N:5.1f} calls")
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(12)
    print("LOAD_TOTTIME")
    print("   ncalls" + out.getvalue().split("ncalls", 1)[-1].rstrip())
    print("LOAD_END")
