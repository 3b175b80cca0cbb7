"""A Redis call timeout for the server's client that costs a dict entry per call, not a timer.

Townhall's server client must fail fast when Redis hangs (a prompt 503, not a request held until its
deadline). redis-py's ``socket_timeout`` does that per call: it wraps every send in ``asyncio.wait_for``
(a new task per command in Python 3.11) and every read in ``asyncio.timeout`` (a timer armed and
cancelled), which was a tenth to a sixth of a Redis-backed request's CPU time (docs/performance.md).

:func:`watch` gives a client's pool connections without a socket timeout that note when each send or
read began, in one :class:`~townhall.deadline_queue.DeadlineQueue` per client, which aborts the
transport of a connection that has waited longer than the timeout. The call then fails as redis-py's
own timeout does (``redis.exceptions.TimeoutError``), within one tick (a tenth of the timeout, 10–250
ms) of it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from townhall.deadline_queue import DeadlineQueue


class _Watched:
    """Mixed into a redis-py connection class (see :func:`watch`); the pool builds it with
    ``socket_timeout=None`` and the watchdog stands in for the timeout."""

    watchdog: DeadlineQueue[_Watched]
    _overdue = False
    # A send may read within itself (redis-py's health check PING): watched until the outermost ends.
    _calls = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._begin()
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except redis.exceptions.ConnectionError:
            self._raise_if_overdue("writing to")
            raise
        finally:
            self._end()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._begin()
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.exceptions.ConnectionError:
            self._raise_if_overdue("reading from")
            raise
        finally:
            self._end()

    def _begin(self) -> None:
        if not self._calls:
            self._overdue = False  # an abort that lost the race with its call's answer is forgotten
        self._calls += 1
        # Each send and each read starts the wait afresh: the timeout is per socket operation, as
        # redis-py's socket_timeout is.
        self.watchdog.begin(self)

    def _end(self) -> None:
        self._calls -= 1
        if not self._calls:
            self.watchdog.end(self)

    def timed_out(self) -> None:
        self._overdue = True
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.transport.abort()

    def _raise_if_overdue(self, doing: str) -> None:
        if self._overdue:
            self._overdue = False
            raise redis.exceptions.TimeoutError(f"Timeout {doing} {self._host_error()}") from None  # type: ignore[attr-defined]


def watch(client: aioredis.Redis, timeout: float) -> aioredis.Redis:
    """Give ``client`` (not yet connected, built with ``socket_timeout=None``) a call timeout of
    ``timeout`` seconds, kept by one :class:`~townhall.deadline_queue.DeadlineQueue` for all its
    connections."""
    pool = client.connection_pool
    base = pool.connection_class
    watchdog: DeadlineQueue[_Watched] = DeadlineQueue(timeout, min(max(timeout / 10, 0.01), 0.25),
                                                      lambda connection: connection.timed_out())
    pool.connection_class = type(f"Watched{base.__name__}", (_Watched, base), {"watchdog": watchdog})
    return client
