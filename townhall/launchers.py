"""The protocol an agent launcher implements (``[agent] launcher``): start a worker for an agent."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from townhall.config import Town
from townhall.domain import Agent


class Launcher(Protocol):
    name: str

    async def launch(self, agent: Agent, town_root: Path) -> None:
        """Start (detached) the worker process for ``agent``, which already has its record.

        Raise :class:`townhall.domain_errors.Conflict` (or any ``DomainError``) with a clear message
        when it cannot be started; never block waiting for the worker to finish.
        """
        ...


@runtime_checkable
class CheckedLauncher(Protocol):
    """A launcher that can tell beforehand whether a worker it starts could run a CLI preset. Optional:
    launchers without it (plugins written before it existed) are simply not asked."""

    def preflight(self, town: Town, cli: str) -> None:
        """Raise :class:`townhall.domain_errors.InvalidInput` (field ``cli``) when a worker this launcher
        started now could not run CLI preset ``cli`` — e.g. its program is not on ``PATH``. Called before
        spawn creates the record and before restart changes it, so a broken agent is refused (422)
        instead of taking work it fails in milliseconds. A launcher whose workers run elsewhere cannot
        tell, and does not implement this protocol (as the built-in `none`).
        """
        ...
