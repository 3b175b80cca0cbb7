"""What a worker does about signals and Redis outages.

SIGTERM/SIGINT set :attr:`Guard.term`, which ends waits early; Redis actions whose results must survive
an outage are retried with backoff, and a signal during the outage ends the retrying (:class:`GiveUp`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, TypeVar

import redis.exceptions

from townhall.waits import event_within

log = logging.getLogger("townhall.worker")
T = TypeVar("T")

BACKOFF_MAX_SECS = 5.0
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class GiveUp(Exception):
    """Terminated while Redis was unreachable."""


class Guard:
    """Signals and Redis outages: ``term`` is set by SIGTERM/SIGINT and ends waits early; Redis actions
    whose results must survive an outage are retried with backoff."""

    def __init__(self) -> None:
        self.term = asyncio.Event()

    async def persist(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis action until it succeeds. A signal during the outage ends the wait
        (:class:`GiveUp`); what was taken is then redelivered (at least once)."""
        backoff = 0.2
        while True:
            try:
                return await action()
            except REDIS_ERRORS as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                if await self.term_within(backoff):
                    raise GiveUp() from exc
                backoff = min(backoff * 2, BACKOFF_MAX_SECS)

    async def term_within(self, seconds: float) -> bool:
        return await event_within(self.term, seconds)
