"""The protocol an agent launcher implements (``[agent] launcher``): start a worker for an agent."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from townhall.domain import Agent


class Launcher(Protocol):
    name: str

    async def launch(self, agent: Agent, town_root: Path) -> None:
        """Start (detached) the worker process for ``agent``, which already has its record.

        Raise :class:`townhall.domain_errors.Conflict` (or any ``DomainError``) with a clear message
        when it cannot be started; never block waiting for the worker to finish.
        """
        ...
