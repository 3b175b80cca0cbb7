"""The worker process's claim on its agent: the ``host:pid:token`` value of the liveness key.

The key (``TownKeys.worker_alive``, TTL a few heartbeats) keeps two live processes from serving one
agent; a holder that is a dead process on this host (a SIGKILLed predecessor) may be taken over at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta


class Liveness:
    """The ``host:pid:token`` value this process writes to its agent's liveness key
    (a :class:`townhall.services.lifecycle.LivenessClaim`)."""

    def __init__(self, ttl: timedelta) -> None:
        self.host = socket.gethostname()
        self.value = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.ttl_ms = int(ttl.total_seconds() * 1000)

    def holder_is_dead_here(self, holder: str) -> bool:
        """A holder on this host whose process is gone (a SIGKILLed predecessor)."""
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self.host or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
