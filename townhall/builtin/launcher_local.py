"""Launcher ``local`` (default): a detached ``tt agent-loop`` process on this machine.

Its output goes to ``<town>/.tt/logs/<name>.log``; it runs in its own session so it outlives the
townhall that started it (a townhall restart must not kill the workers doing the work).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

from townhall import hookimpl
from townhall.config import TownConfig
from townhall.domain import Agent
from townhall.registry import LauncherSpec


class LocalLauncher:
    name = "local"

    async def launch(self, agent: Agent, town_root: Path) -> None:
        logs = town_root / ".tt" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{agent.name}.log").open("ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "townhall.cli.tt_cmd", "--town", str(town_root),
                 "agent-loop", agent.name, "--id", agent.id],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=town_root,
                start_new_session=True,
            )


def _factory(config: TownConfig) -> LocalLauncher:
    return LocalLauncher()


@hookimpl
def townhall_register_launchers(register: Callable[[LauncherSpec], None]) -> None:
    register(LauncherSpec(name="local", factory=_factory, summary="detached `tt agent-loop` process"))
