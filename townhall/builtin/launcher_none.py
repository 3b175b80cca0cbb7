"""Launcher ``none``: create the record only; an external orchestrator starts workers, which register
themselves (e.g. KEDA scaling a worker Deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from townhall import hookimpl
from townhall.config import TownConfig
from townhall.domain import Agent
from townhall.registry import LauncherSpec


class NoLauncher:
    name = "none"

    def __init__(self, config: TownConfig) -> None:
        pass  # the launcher needs no settings

    async def launch(self, agent: Agent, town_root: Path) -> None:
        """Nothing to start: the orchestrator's workers register themselves."""


@hookimpl
def townhall_register_launchers(register: Callable[[LauncherSpec], None]) -> None:
    register(LauncherSpec(name="none", factory=NoLauncher, summary="record only; workers register themselves"))
