"""Bus rows published in the background of the process that committed them (DESIGN §11).

After commit, `submit` only notes the row's id in memory: the request (or the
consumer's message) never waits for the broker. One daemon thread per process
takes whatever has accumulated, claims those rows, publishes them as one
confirmed batch and marks them delivered, so concurrent requests share a
confirm round trip. If the process dies first, or the database or the broker
is down, the rows stay pending and the relay publishes them.
"""

import atexit
import logging
import os
import threading
from collections import deque

from django.db import connection

from core.errors import DATABASE_DOWN

from . import outbox

logger = logging.getLogger(__name__)

BATCH = 100


class BackgroundPublisher:
    def __init__(self) -> None:
        self._pending: deque = deque()
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def submit(self, event_id) -> None:
        with self._wake:
            if self._pid != os.getpid():  # a forked child: its parent's thread is not here
                self._pending.clear()
                self._thread, self._pid = None, os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bus-publisher", daemon=True)
                self._thread.start()
                atexit.register(self.flush, 5.0)  # a clean exit publishes what it has
            self._pending.append(event_id)
            self._idle.clear()
            self._wake.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far was handled; False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._pending:
                    connection.close()  # no connection held by an idle thread
                while not self._pending:
                    self._idle.set()
                    self._wake.wait()
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            try:
                outbox.publish_submitted(batch)
            except DATABASE_DOWN as exc:
                logger.warning(
                    "bus: database unavailable (%s); the relay will publish %d event(s)",
                    exc.__class__.__name__,
                    len(batch),
                )
                connection.close()
            except Exception:  # never let the thread die; the rows wait for the relay
                logger.exception("bus: publishing %d event(s) failed", len(batch))


publisher = BackgroundPublisher()
