"""Ports and child processes, for the tests' servers and for bench/ (one place).

Everything started listens on 127.0.0.1 and is stopped by its PID.
"""

import os
import signal
import socket
import subprocess


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def free_port() -> int:
    return free_ports(1)[0]


def children(pid: int) -> list[int]:
    """The child processes of `pid`, from /proc (empty when it is gone)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return found


def terminate(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM `process` if it still runs; SIGKILL it if it is not gone within `grace` s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
