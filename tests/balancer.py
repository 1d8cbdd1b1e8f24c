"""Several web nodes behind HAProxy on 127.0.0.1 (design §20), for the tests and
bench/fleet.py: uvicorn processes serving config.asgi, and HAProxy 2.6 (Debian's
package) in the foreground with a generated configuration, each stopped by its PID.
The balancer's settings are those of deploy/haproxy.cfg, with the nodes' ports for
its servers. A killed node refuses connections at once, so a request sent to it is
redispatched to another (`option redispatch`) before the health checks notice.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.processes import free_port, terminate

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = os.environ.get("HAPROXY_PATH", "/usr/sbin/haproxy")


def haproxy_missing() -> str | None:
    if not os.access(HAPROXY, os.X_OK):
        return "needs HAProxy: apt-get install -y --no-install-recommends haproxy"
    return None


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become healthy:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


class Node:
    """One web node: uvicorn serving config.asgi on its own port."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name = name
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"node-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Node":
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "3",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_healthy(self.url, self.process, self.log_path)
        return self

    def kill(self) -> None:
        """SIGKILL: the node dies mid-request, as a crashed host would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process:
            terminate(self.process, grace=10)


class Balancer:
    """HAProxy in front of `nodes`, on its own port."""

    def __init__(self, nodes: list[Node], work_dir: Path, *, maxconn: int = 5000):
        self.nodes = nodes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = work_dir / "haproxy.cfg"
        self.log_path = work_dir / "haproxy.log"
        self.maxconn = maxconn
        self.process: subprocess.Popen | None = None

    def config(self) -> str:
        servers = "\n".join(
            f"    server {node.name} 127.0.0.1:{node.port} check" for node in self.nodes
        )
        return f"""global
    maxconn {self.maxconn}

defaults
    mode http
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 3s
    option redispatch
    retries 2
    option http-no-delay

frontend api
    bind 127.0.0.1:{self.port}
    maxconn {self.maxconn}
    option forwardfor
    default_backend web

backend web
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 maxconn {self.maxconn}
{servers}
"""

    def start(self) -> "Balancer":
        self.config_path.write_text(self.config())
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_healthy(self.url, self.process, self.log_path)
        return self

    def stop(self) -> None:
        if self.process:
            terminate(self.process, grace=5)


def node_env(database_url: str, cache_dir: Path, **extra: str) -> dict:
    """What every node of one fleet shares: the database, a cache for the per-user
    stream cap (a directory here; Redis in production), the proxy in front."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CACHE_URL": f"filecache://{cache_dir}",
        "TRUSTED_PROXY_COUNT": "1",
        **extra,
    }
