"""Live events (design §12): an ordered log of changes and its fan-out to open streams.

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

What a stream can hold is bounded: its queue (LIVE_STREAM_BACKLOG events; a
reader that falls further behind is closed and resumes by Last-Event-ID), and
the streams of one owner (LIVE_MAX_STREAMS_PER_USER: a new one closes the
owner's oldest; exactly in a process by the hub, across processes through the
cache by `stream_cap`). Work many streams of a process need alike (an event
rendered for one view, one caller's access re-checked) is done once and shared
(`SharedWork`).
"""

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter, Gauge

from core.errors import DATABASE_DOWN
from core.retention import delete_in_batches

from .models import LiveEvent

logger = logging.getLogger(__name__)

# Summed over the server's processes in multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
OPEN_STREAMS = Gauge(
    "paramedic_live_streams_open",
    "Event streams (design §12) open now.",
    multiprocess_mode="livesum",
)
STREAMS_CLOSED = Counter(
    "paramedic_live_streams_closed",
    "Event streams the service ended, per reason (token_expired, too_slow, "
    "too_many_streams, or the error code a new request would get).",
    ["reason"],
)
STREAM_WORK = Counter(
    "paramedic_live_stream_work",
    "Work done for open streams, shared by those that need it alike: `render` (an "
    "event for one view), `access_check` (one caller's credentials).",
    ["work"],
)

CHANNEL = "live_events"
REPLAY_PAGE = 500
# pg_advisory_xact_lock key (taken by the trigger): "live" in ASCII, one for the log.
ORDER_LOCK = 0x6C697665


def record(*, kind: str, subject_type: str, subject_id, audience=None, former=None):
    """Log a change for the streams; call inside the change's transaction.

    `audience` is whose stream it goes to besides the all-seeing ones (an id the
    caller's domain gives meaning: for a task, its paramedic); `former`, the audience
    the subject just left.

    On PostgreSQL a trigger (migration 0005) takes the advisory lock, draws the id
    under it and queues the NOTIFY, all within this one INSERT.
    """
    if former == audience:
        former = None
    event = LiveEvent.objects.create(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        audience_id=audience,
        former_audience_id=former,
    )
    if connection.vendor != "postgresql":  # there the trigger's NOTIFY announces it
        if connection.in_atomic_block:
            transaction.on_commit(hub.wake)
        else:
            hub.wake()
    return event


def events_after(last_id: int, *, audience=None, limit: int = REPLAY_PAGE) -> list[LiveEvent]:
    """The replay after `Last-Event-ID`: the events a stream missed, in order (all of
    them for an all-seeing stream, or those for one audience)."""
    since = timezone.now() - timedelta(hours=settings.LIVE_RETENTION_HOURS)
    events = LiveEvent.objects.filter(id__gt=last_id, created_at__gte=since)
    if audience is not None:
        events = events.filter(Q(audience_id=audience) | Q(former_audience_id=audience))
    return list(events.order_by("id")[:limit])


def latest_id() -> int:
    return LiveEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def purge() -> int:
    """Drop events older than the retention (a periodic job)."""
    cutoff = timezone.now() - timedelta(hours=settings.LIVE_RETENTION_HOURS)
    return delete_in_batches(LiveEvent.objects.filter(created_at__lt=cutoff))


def new_stream_id() -> str:
    return uuid.uuid4().hex


def streams_per_owner() -> int:
    return max(1, settings.LIVE_MAX_STREAMS_PER_USER)


# Put in a closed stream's queue after whatever it still had (dropped): "stop here".
CLOSED = object()


@dataclass(eq=False)
class Subscription:
    """One open stream: everything (audience None) or one audience's events.

    Its queue holds at most `backlog` events; an event that finds it full closes the
    stream (`too_slow`): the reader resumes from the last id it got, by replay.
    """

    loop: asyncio.AbstractEventLoop
    hub: "Hub"
    id: str
    audience: object = None
    owner: object = None  # whose stream it is (a user's id): the cap on streams per owner
    backlog: int = 1000
    opened: int = 0  # the hub's count when it opened: the smallest is the oldest
    queue: asyncio.Queue = field(init=False)
    reason: str | None = None  # why it was closed, once it is

    def __post_init__(self) -> None:
        # One place more than the backlog, so the CLOSED marker always fits.
        self.queue = asyncio.Queue(maxsize=self.backlog + 1)

    def wants(self, event: LiveEvent) -> bool:
        if self.audience is None:
            return True
        return self.audience in (event.audience_id, event.former_audience_id)

    def take_queued(self) -> list:
        """Everything queued now, without waiting (on the stream's loop)."""
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    def _offer(self, events: list[LiveEvent]) -> None:
        """On the stream's loop: queue what the hub read, or close a stream behind."""
        for event in events:
            if self.reason is not None:
                return
            if self.queue.qsize() >= self.backlog:
                self.hub.unsubscribe(self)
                self._close("too_slow")
                return
            self.queue.put_nowait(event)

    def _close(self, reason: str) -> None:
        """On the stream's loop: drop what is queued and mark the end."""
        if self.reason is not None:
            return
        self.reason = reason
        self.take_queued()
        self.queue.put_nowait(CLOSED)


class Hub:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._opened = 0
        self._swept = 0.0  # when displaced streams were last looked for
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

    def subscribe(self, audience=None, *, owner=None, stream_id: str | None = None) -> Subscription:
        """On the stream's event loop, after `start`. An owner's streams in this
        process beyond LIVE_MAX_STREAMS_PER_USER are closed, the oldest first."""
        subscription = Subscription(
            loop=asyncio.get_running_loop(),
            hub=self,
            id=stream_id or new_stream_id(),
            audience=audience,
            owner=owner,
            backlog=settings.LIVE_STREAM_BACKLOG,
        )
        with self._lock:
            self._opened += 1
            subscription.opened = self._opened
            self._subscriptions.add(subscription)
            owned = [] if owner is None else [s for s in self._subscriptions if s.owner == owner]
        OPEN_STREAMS.inc()
        owned.sort(key=lambda s: s.opened)
        for oldest in owned[: max(0, len(owned) - streams_per_owner())]:
            self.close(oldest, "too_many_streams")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.discard(subscription)
                OPEN_STREAMS.dec()

    def close(self, subscription: Subscription, reason: str) -> None:
        """End a stream from outside it (any thread): it gets no more events, and
        its next step sends `stream.closed` with `reason`. A stream whose client
        has stopped reading no longer counts as open."""
        self.unsubscribe(subscription)
        subscription.loop.call_soon_threadsafe(subscription._close, reason)

    def close_streams(self, stream_ids, reason: str) -> None:
        """Close this process's streams among `stream_ids` (others' are not ours)."""
        wanted = set(stream_ids)
        with self._lock:
            found = [s for s in self._subscriptions if s.id in wanted]
        for subscription in found:
            self.close(subscription, reason)

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
            self._close_displaced()

    def _poll(self) -> None:
        while not self._stopping:
            self._dispatch_new()
            self._close_displaced()
            self._wake.wait(settings.LIVE_POLL_SECONDS)
            self._wake.clear()

    def _close_displaced(self) -> None:
        """Close this process's streams that a newer stream of their owner displaced
        in another process (StreamCap): one cache read for all of them, every
        heartbeat or so."""
        now = time.monotonic()
        if now - self._swept < settings.LIVE_HEARTBEAT_SECONDS:
            return
        self._swept = now
        with self._lock:
            subscriptions = list(self._subscriptions)
        if not subscriptions:
            return
        try:
            displaced = stream_cap.displaced_among([s.id for s in subscriptions])
        except Exception:  # the cache is down: the cap waits, the events do not
            logger.warning("live: could not read displaced streams from the cache", exc_info=True)
            return
        for subscription in subscriptions:
            if subscription.id in displaced:
                self.close(subscription, "too_many_streams")

    def _dispatch_new(self) -> None:
        if self.last_id is None:
            self.last_id = latest_id()
            self._ready.set()
        while True:
            events = list(LiveEvent.objects.filter(id__gt=self.last_id).order_by("id")[:500])
            if not events:
                return
            self.last_id = events[-1].id
            read_at = time.monotonic()
            for event in events:
                # A stream re-checks its access after this before it sends the event.
                event.read_at = read_at
            with self._lock:
                subscriptions = list(self._subscriptions)
            for subscription in subscriptions:
                wanted = [event for event in events if subscription.wants(event)]
                if wanted:
                    subscription.loop.call_soon_threadsafe(subscription._offer, wanted)


hub = Hub()


@dataclass(frozen=True)
class Slot:
    """One of an owner's places for an open stream, in the cache (StreamCap)."""

    key: str
    stream_id: str
    opened_at: float  # epoch seconds: the oldest is displaced first
    until: float  # epoch seconds: when the stream ends at the latest

    @property
    def value(self) -> tuple[str, float]:
        return (self.stream_id, self.opened_at)

    @property
    def timeout(self) -> int:
        return max(1, int(self.until - time.time()) + 1)


class StreamCap:
    """The cap on an owner's open streams across processes, kept in the cache.

    Each process holds it exactly for its own streams (Hub.subscribe). Across
    processes the count lives in the cache (CACHE_URL): one key per slot of an owner
    (`live:streams:<owner>:<n>`), holding the stream that has it and when it opened,
    claimed with the cache's atomic `add`. A new stream that finds every slot taken
    takes the oldest one's and marks that stream displaced; its process's hub closes
    it about a heartbeat later (`displaced_among`), or at once if it is its own. With a cache the
    processes share (Redis) the cap holds across processes and hosts; with the
    default local-memory cache this adds nothing to the hub's count. A slot expires
    when its stream ends at the latest (the token's expiry), so a process that died
    frees its slots by then. A key the cache evicts only makes the count lower: a
    stream is closed only when another took its slot, never because a key was lost.
    """

    prefix = "live:streams"

    def _displaced_key(self, stream_id: str) -> str:
        return f"{self.prefix}:displaced:{stream_id}"

    def claim(self, owner, stream_id: str, until: float) -> tuple[Slot, list[str]]:
        """A slot for a new stream, and the ids of the streams it displaced."""
        opened_at = time.time()
        slots = [
            Slot(f"{self.prefix}:{owner}:{n}", stream_id, opened_at, until)
            for n in range(streams_per_owner())
        ]
        held = cache.get_many([s.key for s in slots])
        for free in (s for s in slots if s.key not in held):
            if cache.add(free.key, free.value, free.timeout):
                return free, []
        held = cache.get_many([s.key for s in slots])  # every one taken (or lost a race)
        if not held:
            cache.set(slots[0].key, slots[0].value, slots[0].timeout)
            return slots[0], []
        oldest = min((s for s in slots if s.key in held), key=lambda s: held[s.key][1])
        displaced = held[oldest.key][0]
        cache.set(self._displaced_key(displaced), 1, settings.LIVE_STREAM_MAX_SECONDS)
        cache.set(oldest.key, oldest.value, oldest.timeout)
        return oldest, [displaced]

    def displaced_among(self, stream_ids: list[str]) -> set[str]:
        """Those of `stream_ids` whose place a stream opened since has taken."""
        keys = {self._displaced_key(stream_id): stream_id for stream_id in stream_ids}
        return {keys[key] for key in cache.get_many(list(keys))}

    def release(self, slot: Slot) -> None:
        held = cache.get(slot.key)
        if held is not None and held[0] == slot.stream_id:
            cache.delete(slot.key)


stream_cap = StreamCap()


class SharedWork:
    """Results of sync work that several streams of a process need alike, keyed:
    one run at a time per key, its result kept (the newest `size` keys) for the
    streams that ask after it.

    `get(key, run, fresh_since=t)` answers with a result whose run started at or
    after `t` (time.monotonic()): a render may be of any age (`-inf`); an access
    check must have started after the event it clears was read. On the event loop;
    a stream that goes away does not cancel a run others wait for.
    """

    def __init__(self, work: str, *, size: int):
        self.work = work
        self.size = size
        self._done: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._running: dict[Hashable, tuple[float, asyncio.Task]] = {}
        self._lock = threading.Lock()  # loops of several threads (tests, WSGI)

    async def get(
        self, key: Hashable, run: Callable[[], Awaitable], *, fresh_since: float = float("-inf")
    ):
        loop = asyncio.get_running_loop()
        with self._lock:
            done = self._done.get(key)
            if done is not None and done[0] >= fresh_since:
                self._done.move_to_end(key)
                return done[1]
            running = self._running.get(key)
            if running is None or running[0] < fresh_since or running[1].get_loop() is not loop:
                started = time.monotonic()
                task = loop.create_task(run())
                task.add_done_callback(functools.partial(self._finished, key, started))
                running = self._running[key] = (started, task)
                STREAM_WORK.labels(self.work).inc()
        return await asyncio.shield(running[1])

    def _finished(self, key, started: float, task: asyncio.Task) -> None:
        with self._lock:
            if self._running.get(key, (0, None))[1] is task:
                del self._running[key]
            if task.cancelled() or task.exception() is not None:
                return  # each waiter gets the error; nothing is kept
            if key not in self._done or self._done[key][0] < started:
                self._done[key] = (started, task.result())
                self._done.move_to_end(key)
            while len(self._done) > self.size:
                self._done.popitem(last=False)
