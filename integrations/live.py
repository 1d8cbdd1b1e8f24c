"""Live events (DESIGN §12): an ordered log of changes and its fan-out to open streams.

`record` writes a LiveEvent in the change's transaction. On PostgreSQL the insert
takes a transaction-level advisory lock first (a trigger), so ids are handed out
in commit order
(a reconnecting device asks for everything after the last id it saw, and no
event can commit later with a smaller id), and it queues a NOTIFY, which
PostgreSQL delivers only when the transaction commits: nothing is announced
before it is visible, and a rollback announces nothing.

`hub` is one per process: a daemon thread that LISTENs (PostgreSQL) or polls
the table every LIVE_POLL_SECONDS (SQLite, `make run`), reads the new rows once
for the whole process and hands each to the subscribers it concerns, on their
own event loops. A stream does not query the database while idle.
"""

import asyncio
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Gauge

from core.errors import DATABASE_DOWN
from core.retention import delete_in_batches

from .models import LiveEvent

logger = logging.getLogger(__name__)

# Summed over the server's processes in multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
OPEN_STREAMS = Gauge(
    "paramedic_live_streams_open",
    "Event streams (DESIGN §12) open now.",
    multiprocess_mode="livesum",
)

CHANNEL = "live_events"
REPLAY_PAGE = 500
# pg_advisory_xact_lock key (taken by the trigger): "live" in ASCII, one for the log.
ORDER_LOCK = 0x6C697665


def record(*, kind: str, subject_type: str, subject_id, paramedic_id=None, former=None):
    """Log a change for the streams; call inside the change's transaction.

    On PostgreSQL a trigger (migration 0005) takes the advisory lock, draws the id
    under it and queues the NOTIFY, all within this one INSERT.
    """
    if former == paramedic_id:
        former = None
    event = LiveEvent.objects.create(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        paramedic_id=paramedic_id,
        former_paramedic_id=former,
    )
    if connection.vendor != "postgresql":  # there the trigger's NOTIFY announces it
        if connection.in_atomic_block:
            transaction.on_commit(hub.wake)
        else:
            hub.wake()
    return event


def events_after(last_id: int, *, paramedic_id=None, limit: int = REPLAY_PAGE) -> list[LiveEvent]:
    """The replay after `Last-Event-ID`: the events a stream missed, in order (all of
    them for a supervisor's, or those concerning one paramedic)."""
    since = timezone.now() - timedelta(hours=settings.LIVE_RETENTION_HOURS)
    events = LiveEvent.objects.filter(id__gt=last_id, created_at__gte=since)
    if paramedic_id is not None:
        events = events.filter(Q(paramedic_id=paramedic_id) | Q(former_paramedic_id=paramedic_id))
    return list(events.order_by("id")[:limit])


def latest_id() -> int:
    return LiveEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def purge() -> int:
    """Drop events older than the retention (a periodic job)."""
    cutoff = timezone.now() - timedelta(hours=settings.LIVE_RETENTION_HOURS)
    return delete_in_batches(LiveEvent.objects.filter(created_at__lt=cutoff))


@dataclass(eq=False)
class Subscription:
    """One open stream: everything (paramedic_id None) or one paramedic's events."""

    loop: asyncio.AbstractEventLoop
    paramedic_id: object = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def wants(self, event: LiveEvent) -> bool:
        if self.paramedic_id is None:
            return True
        return self.paramedic_id in (event.paramedic_id, event.former_paramedic_id)


class Hub:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        self._ready = threading.Event()
        self.last_id: int | None = None  # read by the thread itself: committed rows only

    def start(self) -> int:
        """Make sure the thread runs; returns its cursor, a new stream's starting
        point: every event after it is handed to the subscribers then, or found by
        the stream's replay (which runs after it subscribed)."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread is not ours
                self._thread, self._pid, self._subscriptions = None, os.getpid(), set()
                self.last_id = None
            if self._thread is None or not self._thread.is_alive():
                self._ready = threading.Event()
                self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
                self._thread.start()
        if not self._ready.wait(settings.LIVE_POLL_SECONDS * 10):
            raise DATABASE_DOWN[0]("the live-event hub could not read the database")
        return self.last_id

    def subscribe(self, paramedic_id=None) -> Subscription:
        """On the stream's event loop, after `start`."""
        subscription = Subscription(loop=asyncio.get_running_loop(), paramedic_id=paramedic_id)
        with self._lock:
            self._subscriptions.add(subscription)
        OPEN_STREAMS.inc()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.discard(subscription)
                OPEN_STREAMS.dec()

    @property
    def open_streams(self) -> int:
        return len(self._subscriptions)

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread and close its connection (tests, before the database goes)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        self._stopping, self.last_id = False, None
        self._wake.clear()

    def wake(self) -> None:
        """A change committed in this process (SQLite: no NOTIFY); read it now."""
        self._wake.set()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            connection.close()

    def _serve(self) -> None:
        while not self._stopping:
            try:
                if connection.vendor == "postgresql":
                    self._listen()
                else:
                    self._poll()
            except DATABASE_DOWN as exc:
                logger.warning("live: database unavailable (%s); retrying", type(exc).__name__)
                connection.close()
                self._wake.wait(settings.LIVE_POLL_SECONDS)
                self._wake.clear()
            except Exception:  # never let the thread die: streams would go quiet
                logger.exception("live: the hub failed; restarting it")
                connection.close()
                self._wake.wait(settings.LIVE_POLL_SECONDS)
                self._wake.clear()

    def _listen(self) -> None:
        connection.ensure_connection()
        raw = connection.connection  # psycopg 3, autocommit outside transactions
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        self._dispatch_new()
        while True:
            # A notification or, now and then, a look anyway (nothing is ever missed
            # for long if a notification were lost with a dropped connection).
            for _ in raw.notifies(timeout=settings.LIVE_POLL_SECONDS * 5, stop_after=1):
                pass
            if self._stopping:
                return
            self._dispatch_new()

    def _poll(self) -> None:
        while not self._stopping:
            self._dispatch_new()
            self._wake.wait(settings.LIVE_POLL_SECONDS)
            self._wake.clear()

    def _dispatch_new(self) -> None:
        if self.last_id is None:
            self.last_id = latest_id()
            self._ready.set()
        while True:
            events = list(LiveEvent.objects.filter(id__gt=self.last_id).order_by("id")[:500])
            if not events:
                return
            self.last_id = events[-1].id
            with self._lock:
                subscriptions = list(self._subscriptions)
            for event in events:
                for subscription in subscriptions:
                    if subscription.wants(event):
                        subscription.loop.call_soon_threadsafe(subscription.queue.put_nowait, event)


hub = Hub()
