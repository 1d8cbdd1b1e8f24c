"""A throwaway PostgreSQL cluster for fault tests: its own data dir, port and socket.

Fault tests stop and restart this cluster; the suite's own database is never
touched. `initdb` refuses to run as root, so as root every cluster command runs
as the `postgres` user (`su postgres -c ...`) in a directory it owns. The
server is only ever stopped through `pg_ctl` (or, as a last resort in cleanup,
by the PID in its own postmaster.pid), never by process name.
"""

import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.processes import free_port

STOP_MODES = ("smart", "fast", "immediate")


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin", path)
    return tuple(int(part) for part in match.group(1).split(".")) if match else (0,)


def pg_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: $PG_BIN, Debian's newest, or PATH."""
    explicit = os.environ.get("PG_BIN")
    if explicit and (Path(explicit) / "initdb").exists():
        return Path(explicit)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    return None


class PostgresError(RuntimeError):
    pass


class ThrowawayPostgres:
    """One disposable cluster on 127.0.0.1:<free port>, trust auth, superuser `postgres`.

    Usage::

        with ThrowawayPostgres() as pg:      # initdb + start
            pg.create_database("app")
            url = pg.url("app")
            pg.restart(mode="fast")           # or stop("immediate") ... start()
        # stopped and deleted
    """

    def __init__(self, base_dir: str | os.PathLike | None = None):
        self.bin_dir = pg_bin_dir()
        if self.bin_dir is None:
            raise PostgresError("initdb/pg_ctl not found (apt-get install postgresql)")
        self.as_postgres = os.geteuid() == 0
        # A short path in the system temp dir: the socket path must stay under ~100
        # characters, and the postgres user must reach it (pytest's tmp dirs are 0700 root).
        self.dir = Path(tempfile.mkdtemp(prefix="pgfault-", dir=base_dir))
        if self.as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.port = free_port()
        self.user = "postgres"
        self._initialised = False

    # --- running cluster commands ------------------------------------------------
    def _run(self, args: list[str], *, timeout: float = 60, check: bool = True):
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["su", "postgres", "-c", shlex.join(command)]
        result = subprocess.run(
            command, cwd=self.dir, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise PostgresError(
                f"{args[0]} {args[1:3]} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}\n{self.log_tail()}"
            )
        return result

    def _options(self) -> str:
        return (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.dir} -c fsync=off -c max_connections=100"
        )
        # fsync=off only risks data on an OS crash. synchronous_commit stays on: an
        # immediate stop would otherwise lose commits the clients were told about.

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    # --- lifecycle ---------------------------------------------------------------
    def init(self) -> "ThrowawayPostgres":
        if not self._initialised:
            self._run(
                ["initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                 "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C.UTF-8"],
            )  # fmt: skip
            self._initialised = True
        return self

    def start(self, timeout: int = 30) -> "ThrowawayPostgres":
        self.init()
        for attempt in range(3):
            result = self._run(
                ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
                 "-t", str(timeout), "-o", self._options(), "start"],
                timeout=timeout + 10, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return self
            if "could not bind" in self.log_tail() and attempt < 2:
                self.port = free_port()  # lost the port to someone else: pick another
                continue
            raise PostgresError(f"pg_ctl start failed:\n{result.stderr}\n{self.log_tail()}")
        return self

    def stop(self, mode: str = "fast", timeout: int = 30) -> None:
        if mode not in STOP_MODES:
            raise ValueError(f"mode must be one of {STOP_MODES}")
        if not self.is_running():
            return
        self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-w", "-t", str(timeout), "-m", mode, "stop"],
            timeout=timeout + 10,
        )

    def restart(self, mode: str = "fast", timeout: int = 30) -> None:
        """`pg_ctl restart`: stop (with `mode`) and start again with the same options."""
        self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
             "-t", str(timeout), "-m", mode, "-o", self._options(), "restart"],
            timeout=timeout + 10,
        )  # fmt: skip

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False)
        return status.returncode == 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def cleanup(self) -> None:
        """Stop the server (however it is) and delete the cluster's directory."""
        try:
            if self.data_dir.exists():
                self.stop("immediate")
        except (PostgresError, subprocess.TimeoutExpired):
            pid = self.postmaster_pid()  # pg_ctl failed: the postmaster by its own PID file
            if pid:
                try:
                    os.kill(pid, signal.SIGQUIT)
                    time.sleep(1)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "ThrowawayPostgres":
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- using it ------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", **kwargs):
        import psycopg

        return psycopg.connect(self.conninfo(dbname), connect_timeout=5, **kwargs)

    def create_database(self, name: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name: {name!r}")
        with self.connect(autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def wait_ready(self, dbname: str = "postgres", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(dbname) as conn:
                    conn.execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
