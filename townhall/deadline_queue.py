"""Many waits with one timeout, watched by one timer instead of a timer each.

Arming and cancelling an ``asyncio`` timer (or ``asyncio.timeout``) per request or per Redis call was a
visible share of their cost (docs/performance.md). When every wait has the same timeout, the order the
waits began in is the order their deadlines fall: a dict (insertion-ordered) of key → deadline is a
queue, and each tick of one timer looks only at its head.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
_clock = time.perf_counter


class DeadlineQueue(Generic[K]):
    """Calls ``expire(key)`` for each key still waiting ``timeout`` seconds after it began, at most one
    ``tick`` late. The timer runs only while something waits."""

    def __init__(self, timeout: float, tick: float, expire: Callable[[K], None]) -> None:
        self.timeout = timeout
        self.tick = tick
        self._expire = expire
        self._waiting: dict[K, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def begin(self, key: K) -> None:
        """``key`` starts (or starts again) to wait; it goes to the end of the queue."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # used from a new event loop (tests run one app per loop): start afresh
            self._loop, self._timer = loop, None
            self._waiting.clear()
        waiting = self._waiting
        waiting.pop(key, None)
        # perf_counter, not loop.time(): the same monotonic clock, without a Python method call.
        waiting[key] = _clock() + self.timeout
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._sweep)

    def end(self, key: K) -> None:
        self._waiting.pop(key, None)

    def _sweep(self) -> None:
        assert self._loop is not None
        now = _clock()
        overdue = []
        for key, deadline in self._waiting.items():
            if deadline > now:
                break
            overdue.append(key)
        for key in overdue:
            del self._waiting[key]
            self._expire(key)
        self._timer = self._loop.call_later(self.tick, self._sweep) if self._waiting else None
