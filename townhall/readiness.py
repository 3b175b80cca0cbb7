"""Saying "ready" to whoever started this process: systemd's notify protocol (``NOTIFY_SOCKET``).

townhall sends ``READY=1`` once it serves, a worker once its agent is registered and it takes work, so
a systemd unit of ``Type=notify`` (and ``tt up``, which speaks the same protocol) knows when the process
is really up rather than merely started. Without ``NOTIFY_SOCKET`` nothing is sent.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from pathlib import Path

NOTIFY_ENV = "NOTIFY_SOCKET"
READY = b"READY=1"


def notify_ready() -> None:
    """Send ``READY=1`` to ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace), once:
    the variable is removed, so the processes this one starts later (an agent's CLI) do not inherit it."""
    target = os.environ.pop(NOTIFY_ENV, None)
    if not target:
        return
    address = "\0" + target[1:] if target.startswith("@") else target
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        # Best effort, as in systemd's own sd_notify: a supervisor that went away is not our failure.
        sock.sendto(READY, address)


class ReadySockets:
    """The supervisor's side: one datagram socket per child (so a message says who sent it), in a
    directory of its own with a short path (unix socket paths are limited to about 100 bytes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._socks: dict[str, socket.socket] = {}

    def address(self, name: str) -> str:
        """A new socket for child ``name``: the value of its ``NOTIFY_SOCKET``."""
        path = self.directory / f"{name}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        self._socks[name] = sock
        return str(path)

    def wait(self, names: set[str], seconds: float) -> set[str]:
        """Wait up to ``seconds`` for ``READY=1`` from each of ``names``; the ones that said it."""
        ready: set[str] = set()
        deadline = time.monotonic() + seconds
        while names - ready and (left := deadline - time.monotonic()) > 0:
            by_sock = {self._socks[n]: n for n in names - ready}
            readable, _, _ = select.select(list(by_sock), [], [], left)
            for sock in readable:
                if READY in sock.recv(4096).split(b"\n"):
                    ready.add(by_sock[sock])
        return ready

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        for path in self.directory.glob("*.sock"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()
