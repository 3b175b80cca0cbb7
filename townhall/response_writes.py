"""One socket write per response instead of two.

uvicorn's httptools protocol writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send`` system calls
and, with ``TCP_NODELAY``, two packets the client must read, for every small JSON answer. The protocol
(``connection_guard.GuardedHttpToolsProtocol``) writes through a :class:`CoalescedWrites` in place of
the transport (a websocket upgrade gets the transport itself): a write made while nothing is held
is held until the next write, which goes out joined with it. A piece after which uvicorn is sure to
write more — the headers or a body piece of a ``Content-Length`` response with body bytes still to come,
not a ``HEAD`` answer — waits for that write however long it takes (every non-streaming response leaves
in one call, and arms no timer). Any other piece — the last one, a stream's headers or chunks,
``100 Continue`` — also leaves at the end of the event-loop step, so nothing a client waits for waits
on a body that does not exist yet. Closing sends what is held first (uvicorn closes a connection whose
app failed or gave up mid-response).
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Protocol


class _Connection(Protocol):
    #: uvicorn's request cycle of the connection (``None`` before its first request).
    cycle: Any


class CoalescedWrites:
    """The transport as the HTTP protocol sees it: ``write`` holds one piece until the next write or the
    end of the loop step, ``close`` sends what is held first; everything else is the transport's."""

    __slots__ = ("transport", "_loop", "_connection", "_held", "is_closing")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop,
                 connection: _Connection) -> None:
        self.transport = transport
        self._loop = loop
        self._connection = connection
        self._held: bytes | None = None
        #: The transport's own method: asked twice per request, and a call less each time.
        self.is_closing = transport.is_closing

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            cycle = self._connection.cycle
            # uvicorn counts a Content-Length body down before each write of it; a HEAD answer has none.
            if (cycle is None or cycle.chunked_encoding is not False or cycle.expected_content_length <= 0
                    or cycle.scope["method"] == "HEAD"):
                self._loop.call_soon(self.flush)
        else:
            # A response's body after its headers (or any second piece): out now, with what was held.
            self._held = None
            self.transport.write(held + data)

    def writelines(self, pieces: Iterable[bytes]) -> None:
        self.write(b"".join(pieces))

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
