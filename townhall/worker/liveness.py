"""The worker process's claim on its agent: the ``host:pid:token`` value of the liveness key.

The key (``TownKeys.worker_alive``, TTL a few heartbeats) keeps two live processes from serving one
agent; a holder that is a dead process on this host (a SIGKILLed predecessor) may be taken over at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from townhall.processes import has_ended


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
        return pid == os.getpid() or has_ended(pid)

