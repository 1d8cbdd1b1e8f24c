"""What a process committed, handed on in the background (design §8, §11).

After commit, `hand_on` only notes the row's id in memory: the request (or the
consumer's message) never waits for a broker. One daemon thread per process and
kind of work takes whatever has accumulated and hands it on as one batch:

- `bus_publisher`: claims those bus rows, publishes them as one confirmed batch and
  marks them delivered (integrations.delivery), so concurrent requests share one
  confirm round trip;
- `delivery_jobs`: queues one Celery delivery job per batch of HTTP rows (the
  worker delivers them), so a burst is a few jobs, not one per row.

If the process dies first, or the database or the broker is down, the rows stay
pending and the relay takes them. With Celery in-process (no broker, `make run`)
the jobs path is not used: delivery runs right after commit, as before.
"""

import atexit
import logging
import os
import threading
from collections import deque
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from core.errors import DATABASE_DOWN

from . import delivery
from .jobs import deliver_events
from .models import Destination

logger = logging.getLogger(__name__)


class BackgroundBatcher:
    def __init__(self, name: str, handle: Callable[[list], None], batch: int):
        self.name, self.handle, self.batch = name, handle, batch
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
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
                atexit.register(self.flush, 5.0)  # a clean exit hands on what it has
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
                    connection.close()  # an idle thread holds no database connection
                while not self._pending:
                    self._idle.set()
                    self._wake.wait()
                size = min(self.batch, len(self._pending))
                batch = [self._pending.popleft() for _ in range(size)]
            try:
                self.handle(batch)
            except DATABASE_DOWN as exc:
                logger.warning(
                    "%s: database unavailable (%s); the relay takes %d event(s)",
                    self.name,
                    exc.__class__.__name__,
                    len(batch),
                )
                connection.close()
            except Exception:  # never let the thread die; the rows wait for the relay
                logger.exception("%s: handing on %d event(s) failed", self.name, len(batch))


def queue_deliveries(event_ids) -> None:
    """One delivery job for these rows. A broker outage is not an error here."""
    try:
        deliver_events.delay([str(pk) for pk in event_ids])
    except Exception as exc:  # broker down or misconfigured: the relay will deliver
        logger.warning(
            "could not queue %d outbox event(s) (%s); the relay will deliver them",
            len(event_ids),
            exc.__class__.__name__,
        )


bus_publisher = BackgroundBatcher("bus-publisher", delivery.publish_submitted, batch=100)
delivery_jobs = BackgroundBatcher("delivery-jobs", queue_deliveries, batch=20)


def hand_on(event_id, destination: str | None = None) -> None:
    """After commit: a bus row to the background publisher; any other row to a
    delivery job (queued in batches by the background thread, or, with Celery
    in-process, run now)."""
    if destination == Destination.BUS:
        bus_publisher.submit(event_id)
    elif settings.CELERY_TASK_ALWAYS_EAGER:
        queue_deliveries([event_id])
    else:
        delivery_jobs.submit(event_id)


def flush(timeout: float = 10.0) -> bool:
    """Wait until both have handed on everything submitted so far."""
    return bus_publisher.flush(timeout) and delivery_jobs.flush(timeout)
