"""Limits uvicorn's httptools protocol lacks: header size, read deadlines, a connection cap.

uvicorn (0.5x, ``http="httptools"``) bounds none of these for a client that has not finished a request:
``h11_max_incomplete_event_size`` applies to h11 only, the keep-alive timer is armed only after a
response and is cancelled by any byte received, and ``limit_concurrency`` answers 503 only once a
request's headers are complete, so connections that never complete one are never refused. Here:

* headers larger than ``max_header_bytes`` → ``431`` and the connection is closed;
* headers not complete ``header_timeout_secs`` after the connection opened (or after the previous
  response, or after the request's first byte), or a body not complete ``body_timeout_secs`` after
  its headers → the connection is closed without a response;
* more than ``max_connections`` open → the connection that has waited longest for its next request is
  closed to make room; when every connection is running a request, the newcomer's request gets
  uvicorn's plain ``503 Service Unavailable``.
"""

from __future__ import annotations

import asyncio
import functools
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


class ConnectionGuard:
    """Shared by every connection of one server: the limits, and a timer that enforces every open
    connection's read deadline.

    A connection keeps its own read deadline (loop time) and since when it has been waiting for a
    request in attributes, and one timer looks at every open connection each tick: arming and
    cancelling a timer per connection, or keeping the deadlines and the waiting order in shared dicts,
    cost a request several calls; attributes cost it a few stores. A deadline is enforced within one
    tick (a tenth of the shorter timeout, 10-500 ms)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.header_timeout = limits.header_timeout_secs
        self.body_timeout = limits.body_timeout_secs
        self.open: set[GuardedHttpToolsProtocol] = set()
        self._tick = min(max(min(limits.header_timeout_secs, limits.body_timeout_secs) / 10, 0.01), 0.5)
        self._timer: asyncio.TimerHandle | None = None

    def protocol_factory(self) -> Callable[..., GuardedHttpToolsProtocol]:
        """What ``uvicorn.Config(http=...)`` takes: uvicorn adds its own keyword arguments."""
        return functools.partial(GuardedHttpToolsProtocol, guard=self)

    def opened(self, connection: GuardedHttpToolsProtocol) -> None:
        self.open.add(connection)
        if self._timer is None:
            self._timer = connection.loop.call_later(self._tick, self._sweep, connection.loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in [c for c in self.open if c.deadline is not None and c.deadline <= now]:
            connection.close_now()
        self._timer = loop.call_later(self._tick, self._sweep, loop) if self.open else None

    def make_room(self, newcomer: GuardedHttpToolsProtocol) -> None:
        """Close the longest-waiting connections while more than ``max_connections`` are open."""
        # Closed ones stay in uvicorn's set until their connection_lost runs: they no longer count.
        open_now = sum(1 for c in newcomer.connections if not c.transport.is_closing())
        excess = open_now - self.limits.max_connections
        if excess <= 0:
            return
        waiting = sorted((c for c in self.open if c.idle_since is not None and c is not newcomer),
                         key=lambda c: c.idle_since)  # type: ignore[arg-type, return-value]
        for connection in waiting[:excess]:
            connection.close_now()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the :class:`ConnectionGuard` limits."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        #: When the connection must have finished reading what it is reading (loop time), if it must.
        self.deadline: float | None = None
        #: Since when (loop time) it has been waiting for its next request, while it waits.
        self.idle_since: float | None = None
        self._awaiting_headers = False
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every write of the connection, so that coalescing never reorders what goes out.
        self.transport = CoalescedWrites(transport, self.loop)  # type: ignore[assignment]
        self._guard.opened(self)
        self._wait_for_request()
        self._guard.make_room(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.open.discard(self)
        self.deadline = self.idle_since = None
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the connection over with the transport itself.
        self.transport = self.transport.transport  # type: ignore[attr-defined]
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after parsing, and only while headers are still incomplete, so that a body arriving
        # with its headers never counts; the limit holds to within one read.
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self._guard.limits.max_header_bytes:
                self.transport.write(REQUEST_HEADER_FIELDS_TOO_LARGE)
                self.close_now()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._header_bytes = 0
        # Pipelined behind a request still running: the clock starts when that one is answered.
        answering = self.cycle is not None and not self.cycle.response_complete
        if self.deadline is None and not answering:
            self.deadline = self.loop.time() + self._guard.header_timeout

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self.idle_since = None
        self.deadline = self.loop.time() + self._guard.body_timeout
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.deadline = None
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            self._wait_for_request()  # answered before the body was read (401, 413): idle now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # With nothing queued, the connection waits for its next request (uvicorn's keep-alive timer
        # is cancelled by any byte, e.g. a trickle of blank lines, so it is no bound on its own).
        if not self.pipeline and not self.transport.is_closing():
            self._wait_for_request()

    def close_now(self) -> None:
        self.deadline = self.idle_since = None
        # Out of uvicorn's count now, not when connection_lost runs: a request completing in the same
        # loop iteration must not get limit_concurrency's 503 because of connections already closed.
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _wait_for_request(self) -> None:
        now = self.loop.time()
        self.idle_since = now
        if self.deadline is None:
            self.deadline = now + self._guard.header_timeout
