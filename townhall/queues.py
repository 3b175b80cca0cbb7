"""The protocol a queue backend implements: how shared (backlog) work reaches workers.

Services call the first group of methods; workers call the second. Both backends keep the upstream
backlog list ``tt:{town}:backlog`` as the catalogue of queued shared work, so backlog routes and the
original ``tt`` keep working in either mode.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class QueueDepth(msgspec.Struct, frozen=True):
    """What ``/api/scaling`` needs from the shared queue."""

    unread: int
    in_flight: int


class QueueBackend(Protocol):
    name: str

    # ---- used by services (REST, CLI) -----------------------------------------------------
    async def enqueue(self, task_id: str) -> None:
        """Make a pending task available as shared work (backlog add)."""
        ...

    async def withdraw(self, task_id: str) -> bool:
        """Take an undelivered task back out (claim, delete). ``False`` if it was not queued."""
        ...

    async def measure(self) -> QueueDepth:
        """Unread and in-flight shared work, without scanning finished tasks."""
        ...
