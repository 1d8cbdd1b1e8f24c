"""What the deployed server prints and how its entry points start (design §16).

The Dockerfile's own command is started here as it runs in the container
(production settings), so a change to the server or its flags is tested as is.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRET-DOWNLOAD-TOKEN-abc123"


def dockerfile_command() -> list[str]:
    """The CMD of the Dockerfile, with its bind address made local."""
    text = (ROOT / "Dockerfile").read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))
    return command


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="entrypoint-test-" + "k" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        WHITENOISE_USE_FINDERS="true",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    return env


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "gunicorn").exists(),
    reason="needs the production server (requirements/prod.txt)",
)
def test_the_deployed_server_logs_no_signed_url_secret(tmp_path):
    port = free_port()
    command = [
        "127.0.0.1:" + str(port) if part.startswith("0.0.0.0:") else part
        for part in dockerfile_command()
    ]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=production_env(tmp_path), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        file_url = f"{base}/api/v1/xrays/00000000-0000-0000-0000-000000000001/file"
        assert httpx.get(file_url, params={"token": SECRET}).status_code == 404
        assert httpx.get(f"{base}/healthz", params={"token": SECRET}).status_code == 200
    finally:
        terminate(process, grace=15)
    printed = log.read_text(errors="replace")
    assert SECRET not in printed
    assert "/api/v1/xrays/00000000-0000-0000-0000-000000000001/file 404" in printed, printed


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_an_entry_point_without_settings_does_not_run_with_the_development_key(module):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY" in done.stderr


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_production_refuses_the_repositorys_development_key(module):
    from config.settings.base import DEVELOPMENT_SECRET_KEY

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(DJANGO_SECRET_KEY=DEVELOPMENT_SECRET_KEY, DJANGO_ALLOWED_HOSTS="x")
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "development key" in done.stderr
