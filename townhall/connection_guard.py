"""Limits uvicorn's httptools protocol lacks: header size, read deadlines, a connection cap.

uvicorn (0.5x, ``http="httptools"``) bounds none of these for a client that has not finished a request:
``h11_max_incomplete_event_size`` applies to h11 only, the keep-alive timer is armed only after a
response and is cancelled by any byte received, and ``limit_concurrency`` answers 503 only once a
request's headers are complete, so connections that never complete one are never refused. Here:

* headers larger than ``max_header_bytes`` → ``431`` and the connection is closed;
* headers not complete ``header_timeout_secs`` after the connection opened or its previous response
  was answered, or a body not complete ``body_timeout_secs`` after its headers → the connection is
  closed without a response (within two of the guard's ticks: :class:`ConnectionGuard`);
* more than ``max_connections`` open → the connection that has waited longest for its next request is
  closed to make room; when every connection is running a request, the newcomer's request gets
  uvicorn's plain ``503 Service Unavailable``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
from typing import Any, Callable

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from townhall.response_writes import CoalescedWrites

REQUEST_HEADER_FIELDS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request header fields too large"
)


class ConnectionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The ``[townhall]`` connection limits (see ``docs/configuration.md``)."""

    max_connections: int
    max_header_bytes: int
    header_timeout_secs: float
    body_timeout_secs: float


class _Phase(enum.Enum):
    WAITING = "waiting for a request's headers"  # no request yet, or the last one answered
    BODY = "reading a request's body"
    ANSWERING = "answering"  # no read deadline: the app has the request


class ConnectionGuard:
    """Shared by every connection of one server: the limits, and one timer that enforces every open
    connection's read deadline.

    A request costs the guard nothing on its way: each tick, the timer looks at what every open
    connection is doing, by the state uvicorn keeps of it (no request, or the last one answered:
    waiting for headers; a request whose body is still coming: reading its body; else answering), and
    closes one that has been doing the same thing for longer than that phase's timeout. Deadlines kept
    by the connections themselves, updated at each step of each request, cost a request several calls.
    A deadline is enforced within two ticks (a tick is a tenth of the shorter timeout, 10-500 ms): a
    phase is timed from the first tick that sees it."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[GuardedHttpToolsProtocol] = set()
        self._tick = min(max(min(limits.header_timeout_secs, limits.body_timeout_secs) / 10, 0.01), 0.5)
        self._timer: asyncio.TimerHandle | None = None

    def protocol_factory(self) -> Callable[..., GuardedHttpToolsProtocol]:
        """What ``uvicorn.Config(http=...)`` takes: uvicorn adds its own keyword arguments."""
        return functools.partial(GuardedHttpToolsProtocol, guard=self)

    def opened(self, connection: GuardedHttpToolsProtocol) -> None:
        self.open.add(connection)
        connection.since = connection.loop.time()
        if self._timer is None:
            self._timer = connection.loop.call_later(self._tick, self._sweep, connection.loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        limits = self.limits
        for connection in list(self.open):
            if connection.transport.is_closing():
                continue
            cycle, phase = connection.phase()
            if cycle is not connection.seen_cycle or phase is not connection.seen_phase:
                connection.seen_cycle, connection.seen_phase, connection.since = cycle, phase, now
            elif phase is _Phase.WAITING and now - connection.since >= limits.header_timeout_secs:
                connection.close_now()
            elif phase is _Phase.BODY and now - connection.since >= limits.body_timeout_secs:
                connection.close_now()
        self._timer = loop.call_later(self._tick, self._sweep, loop) if self.open else None

    def make_room(self, newcomer: GuardedHttpToolsProtocol) -> None:
        """Close the longest-waiting connections while more than ``max_connections`` are open."""
        # Closed ones stay in uvicorn's set until their connection_lost runs: they no longer count.
        open_now = sum(1 for c in newcomer.connections if not c.transport.is_closing())
        excess = open_now - self.limits.max_connections
        if excess <= 0:
            return
        waiting = []
        for connection in self.open:
            if connection is newcomer or connection.transport.is_closing():
                continue
            cycle, phase = connection.phase()
            if phase is _Phase.WAITING:
                # Waiting since the tick that saw it wait; one whose wait no tick has seen yet is newest.
                seen = cycle is connection.seen_cycle and phase is connection.seen_phase
                waiting.append((connection.since if seen else math.inf, connection))
        waiting.sort(key=lambda item: item[0])
        for _, connection in waiting[:excess]:
            connection.close_now()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the :class:`ConnectionGuard` limits."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        #: What the guard's last tick saw the connection doing, and since when (loop time).
        self.seen_cycle: Any = None
        self.seen_phase = _Phase.WAITING
        self.since = 0.0
        self._header_bytes = 0

    def phase(self) -> tuple[Any, _Phase]:
        """The request cycle the connection is on (``None`` before its first request) and what it is doing."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return cycle, _Phase.WAITING
        return cycle, _Phase.BODY if cycle.more_body else _Phase.ANSWERING

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        HttpToolsProtocol.connection_made(self, transport)
        # Every write of the connection, so that coalescing never reorders what goes out.
        self.transport = CoalescedWrites(transport, self.loop, self)  # type: ignore[assignment]
        self._guard.opened(self)
        self._guard.make_room(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.open.discard(self)
        HttpToolsProtocol.connection_lost(self, exc)

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the connection over with the transport itself, and its limits.
        self._guard.open.discard(self)
        self.transport = self.transport.transport  # type: ignore[attr-defined]
        HttpToolsProtocol.handle_websocket_upgrade(self)

    # Calls the protocol's method directly (not through super()): it runs for every request.
    def data_received(self, data: bytes) -> None:
        # What a read was is told by uvicorn's own state around it, with no parser callback of ours: a
        # read that completed a request's headers made a new cycle; one made while a body was arriving
        # carried body; any other read carried headers not yet complete. So a body never counts, and
        # the limit holds to within one read.
        before = self.cycle
        in_body = before is not None and before.more_body
        HttpToolsProtocol.data_received(self, data)
        if self.cycle is not before:
            self._header_bytes = 0
        elif not in_body and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self._guard.limits.max_header_bytes:
                self.transport.write(REQUEST_HEADER_FIELDS_TOO_LARGE)
                self.close_now()

    def close_now(self) -> None:
        # Out of uvicorn's count now, not when connection_lost runs: a request completing in the same
        # loop iteration must not get limit_concurrency's 503 because of connections already closed.
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.close()
