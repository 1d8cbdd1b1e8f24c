"""Helpers shared by the benchmark scripts in this folder.

The scripts run as `.venv/bin/python bench/<name>.py` from the project root, so
this folder is sys.path[0] and they import this file as `common`.
"""

import http.client
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages: tests.processes, then Django's

from tests.processes import children, free_port, terminate  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")


# --- deadline and signals ----------------------------------------------------


class Deadline(Exception):
    """Raised by SIGALRM when a script runs past its hard stop."""


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # run the clean-up in main()'s finally


def arm_deadline(script: str, seconds: int) -> None:
    """Stop `script` with Deadline after `seconds`; turn SIGTERM into SystemExit.

    Both are exceptions, so the caller's `finally` still cleans up; call
    signal.alarm(0) there to disarm.
    """

    def on_alarm(signum, frame):
        raise Deadline(f"{script} did not finish within {seconds} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(seconds)


# --- processes and ports -----------------------------------------------------


# --- PostgreSQL ----------------------------------------------------------------


def database_name(url: str) -> str:
    """The database a postgres:// URL names."""
    return urlsplit(url).path.lstrip("/")


def admin_url(url: str) -> str:
    """The same server's `postgres` maintenance database."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def ensure_database(url: str) -> None:
    """Create the database `url` names if it is missing (psycopg, via `postgres`)."""
    import psycopg

    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


# --- Django ------------------------------------------------------------------


def setup_django(env: dict[str, str], quiet: Iterable[str] = (), *, migrate: bool = True) -> None:
    """Set up Django in this process with `env` (and migrate, unless told not to).

    The loggers named in `quiet` are set to WARNING right after django.setup().
    """
    os.environ.update(env)

    import logging

    import django
    from django.core.management import call_command

    django.setup()
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    if migrate:
        call_command("migrate", verbosity=0)


def postgres_banner() -> str:
    """`PostgreSQL <version>, database <name>` for Django's default connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"PostgreSQL {version}, database {connection.settings_dict['NAME']}"


def production_env(unset: Iterable[str], **extra: str) -> dict[str, str]:
    """This process's environment for production settings served on 127.0.0.1.

    The variables in `unset` (outside services and the like) are removed; `extra`
    is added last.
    """
    env = dict(os.environ)
    for name in unset:
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _run(command: list[str], env: dict, timeout: float, what: str) -> str:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def manage(env: dict, *args: str, timeout: float) -> str:
    """Run `manage.py args` with `env`; its stdout, or RuntimeError if it failed."""
    return _run([PYTHON, "manage.py", *args], env, timeout, f"manage.py {args[0]}")


def run_script(env: dict, script: str, *args: str, timeout: float) -> str:
    """Run bench/`script` with `env`; its stdout, or RuntimeError if it failed."""
    return _run([PYTHON, str(ROOT / "bench" / script), *args], env, timeout, script)


def tagged(output: str, tag: str) -> str:
    """The rest of the first line of `output` that starts with `tag` and a space."""
    for line in output.splitlines():
        if line.startswith(tag + " "):
            return line[len(tag) + 1 :]
    raise RuntimeError(f"no {tag} line in:\n{output}")


# --- gunicorn ----------------------------------------------------------------


def healthz_ok(port: int, timeout: float = 2) -> bool:
    """True if GET /healthz on 127.0.0.1:`port` answers 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz", headers={"Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Gunicorn:
    """gunicorn serving config.wsgi on a free 127.0.0.1 port, its output in `log_path`."""

    def __init__(
        self, env: dict, log_path: Path, args: Sequence[str], app: str = "config.wsgi:application"
    ):
        self.app = app  # config.asgi:application with `-k config.asgi_worker.Worker`
        self.env = env
        self.args = list(args)  # workers, timeout, ...
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60, workers: int = 1) -> "Gunicorn":
        """Start it; return once /healthz answers 200 and `workers` workers run."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                GUNICORN,
                self.app,
                "-b",
                f"127.0.0.1:{self.port}",
                *self.args,
                # Else gunicorn binds ~/.gunicorn/gunicorn.ctl, shared with any other.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_path.read_text()[-3000:]}")
            if healthz_ok(self.port) and len(children(self.process.pid)) >= workers:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout}s")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, grace=35)
