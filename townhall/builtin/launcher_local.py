"""Launcher ``local`` (default): a detached ``tt agent-loop`` process on this machine.

Its output goes to ``<town>/.tt/logs/<name>.log`` (appended: the log of earlier lives stays); it runs in
its own session with stdin closed, so it outlives the townhall that started it (a townhall restart must
not kill the workers doing the work). The worker is told its record id (``--id``), so it never registers
a second agent of the same name.
"""

from __future__ import annotations

import subprocess
import sys
import threading
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
            process = subprocess.Popen(
                [sys.executable, "-m", "townhall.cli.tt_cmd", "--town", str(town_root),
                 "agent-loop", agent.name, "--id", agent.id],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=town_root,
                start_new_session=True,
            )
        # Reap it when it exits, so a long-running townhall does not collect zombie workers.
        threading.Thread(target=process.wait, name=f"reap-{agent.name}", daemon=True).start()


def _factory(config: TownConfig) -> LocalLauncher:
    return LocalLauncher()


@hookimpl
def townhall_register_launchers(register: Callable[[LauncherSpec], None]) -> None:
    register(LauncherSpec(name="local", factory=_factory, summary="detached `tt agent-loop` process"))
