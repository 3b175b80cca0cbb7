"""One socket write per response instead of two.

uvicorn's httptools protocol writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send`` system calls
and, with ``TCP_NODELAY``, two packets the client must read, for every small JSON answer. The protocol
(``connection_guard.GuardedHttpToolsProtocol``) writes through a :class:`CoalescedWrites` in place of
the transport (a websocket upgrade gets the transport itself): a write made while nothing is held
is held until the next write, which goes out joined with it, or until the end of the event-loop step,
whichever comes first. A body sent in the same step as its headers (every non-streaming response)
therefore leaves in one call; the headers of a stream whose body comes later still leave at the end of
the step, so nothing waits on a client.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable


class CoalescedWrites:
    """The transport as the HTTP protocol sees it: ``write`` holds one piece until the next write or the
    end of the loop step, ``close`` sends what is held first; everything else is the transport's."""

    __slots__ = ("transport", "_loop", "_held", "is_closing")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        #: The transport's own method: asked twice per request, and a call less each time.
        self.is_closing = transport.is_closing

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
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
