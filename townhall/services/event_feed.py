"""The live event feed of one townhall process: ONE Redis reader fanned out to every subscriber.

The reader (``XREAD BLOCK`` on the runtime's blocking client) decodes and JSON-encodes each entry of
the town stream once and offers it to every subscription, whose filter decides there and then whether
to keep it, so the 200th subscriber costs a comparison and a list append per event.

Each subscription holds at most ``buffer`` events its reader has not taken. One that falls that far
behind (a client that stopped reading) is ended and forgotten — its events are not kept anywhere — so
a stalled client never grows this process's memory; it reconnects with ``Last-Event-ID`` and reads what
it missed from Redis.

No gap, no duplicate on resumption: a subscription is registered (synchronously, between two reader
rounds) *before* its backlog is read with ``XRANGE``; whatever the reader fans out after that moment is
in its buffer, whatever was added before is in Redis for the ``XRANGE``, and the overlap is dropped by
comparing stream ids.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from typing import AsyncIterator

import msgspec
import redis.asyncio as aioredis
import redis.exceptions

from townhall.domain.events import EventFilter, EventRecord
from townhall.store import TownStore

log = logging.getLogger("townhall.events")

#: How long one ``XREAD BLOCK`` waits before the reader loops (it also notices closing then).
BLOCK_MS = 5000
#: Entries per ``XREAD``/``XRANGE`` round.
BATCH = 500
RETRY_SECS = 0.5


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``ms`` alone is ``ms-0``)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class FeedItem(msgspec.Struct, frozen=True):
    """One event, decoded and encoded once for every subscriber."""

    record: EventRecord
    #: ``msgspec.json.encode(record)``: one line, no newline in it.
    json: bytes

    @classmethod
    def of(cls, record: EventRecord) -> FeedItem:
        return cls(record=record, json=msgspec.json.encode(record))


class Ended(enum.Enum):
    """Why a subscription ended."""

    #: Its reader fell ``buffer`` events behind.
    OVERFLOW = "overflow"
    #: The process is shutting down.
    SHUTDOWN = "shutdown"


class Subscription:
    """One reader's filter and its bounded buffer of events not yet taken."""

    def __init__(self, event_filter: EventFilter, buffer: int) -> None:
        self.filter = event_filter
        self.buffer = buffer
        self.ended: Ended | None = None
        self._items: deque[FeedItem] = deque()
        self._wake = asyncio.Event()

    @property
    def held(self) -> int:
        return len(self._items)

    def offer(self, item: FeedItem) -> bool:
        """Called by the reader for every event; keeps the ones the filter wants. ``False`` once the
        subscription has ended (this offer may be what overflowed it)."""
        if self.ended is not None:
            return False
        if not self.filter.matches(item.record):
            return True
        if len(self._items) >= self.buffer:
            self.end(Ended.OVERFLOW)
            return False
        self._items.append(item)
        self._wake.set()
        return True

    def end(self, why: Ended) -> None:
        if self.ended is None:
            self.ended = why
        self._items.clear()
        self._wake.set()

    async def take(self, timeout: float) -> list[FeedItem] | None:
        """What arrived since the last call, waiting up to ``timeout`` seconds for something (``[]``
        when nothing came: time for a heartbeat); ``None`` once the subscription has ended."""
        if not self._items and self.ended is None:
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):  # no task per wait, unlike wait_for on 3.11
                    await self._wake.wait()
            except TimeoutError:
                return []
        if self.ended is not None:
            return None
        items = list(self._items)
        self._items.clear()
        return items


class EventFeed:
    """The town stream's reader and its subscriptions, for one process."""

    def __init__(self, store: TownStore, blocking: aioredis.Redis, *, buffer: int = 1000) -> None:
        self.store = store
        self.blocking = blocking
        self.buffer = buffer
        self.subscriptions: set[Subscription] = set()
        self._position: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Start the reader at the stream's current end, if it is not running yet. Raises Redis errors
        (the caller answers 503) — nothing is subscribed then."""
        async with self._starting:
            if self._reader is not None:
                return
            self._position = await self.store.events.last_id()
            self._reader = asyncio.create_task(self._read_forever(), name="townhall-event-reader")

    async def follow(self, event_filter: EventFilter, after: str | None,
                     heartbeat_secs: float) -> AsyncIterator[list[FeedItem]]:
        """Batches of events for one subscriber, oldest first: first ``[]`` once subscribed, then
        (with ``after``, a stream id) what came after ``after`` — read from Redis — then live events;
        ``[]`` whenever ``heartbeat_secs`` pass without one. Ends when the subscription ends
        (:class:`Ended`). Call :meth:`start` first."""
        subscription = Subscription(event_filter, self.buffer)
        if self._closed:
            return
        self.subscriptions.add(subscription)
        try:
            yield []
            cursor = after
            if after is not None:
                while True:
                    page = await self.store.events.after(cursor, BATCH)
                    if page:
                        cursor = page[-1].id
                        wanted = [FeedItem.of(r) for r in page if event_filter.matches(r)]
                        if wanted:
                            yield wanted
                    if len(page) < BATCH or subscription.ended is not None:
                        break
            seen = stream_id_key(cursor) if cursor is not None else None
            while (batch := await subscription.take(heartbeat_secs)) is not None:
                if seen is not None and batch:
                    # Events the backlog read already gave; past them the reader's order is the stream's.
                    batch = [item for item in batch if stream_id_key(item.record.id) > seen]
                    if not batch:
                        continue
                    seen = None
                yield batch
        finally:
            self.subscriptions.discard(subscription)

    async def _read_forever(self) -> None:
        assert self._position is not None
        while not self._closed:
            try:
                records = await self.store.events.wait_after(self.blocking, self._position, BLOCK_MS, BATCH)
            except (redis.exceptions.RedisError, OSError) as exc:
                log.debug("event reader: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(RETRY_SECS)
                continue
            except Exception:  # a bug must not silence every subscriber's stream for good
                log.exception("event reader failed; retrying")
                await asyncio.sleep(RETRY_SECS)
                continue
            for record in records:
                item = FeedItem.of(record)
                for subscription in list(self.subscriptions):
                    if not subscription.offer(item):
                        self._drop(subscription)
                self._position = record.id

    def _drop(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
        if subscription.ended is Ended.OVERFLOW:
            self.dropped += 1
            log.warning("event subscriber dropped: %d events behind (it may resume with Last-Event-ID)",
                        self.buffer)

    def close(self) -> None:
        """End every subscription (their streams finish, so a graceful shutdown is not held up by
        them) and stop the reader."""
        self._closed = True
        for subscription in list(self.subscriptions):
            subscription.end(Ended.SHUTDOWN)
        if self._reader is not None:
            self._reader.cancel()

    async def aclose(self) -> None:
        self.close()
        if self._reader is not None:
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
