"""Launcher ``local`` (default): a detached ``tt agent-loop`` process on this machine.

Its output goes to ``<town>/.tt/logs/<name>.log`` (appended: the log of earlier lives stays); it runs in
its own session with stdin closed, so it outlives the townhall that started it (a townhall restart must
not kill the workers doing the work). The worker is told its record id (``--id``), so it never registers
a second agent of the same name.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

from townhall import hookimpl
from townhall.config import AgentCliPreset, Town, TownConfig
from townhall.domain import Agent
from townhall.domain.agents import is_safe_agent_name
from townhall.domain_errors import Conflict, InvalidInput
from townhall.registry import LauncherSpec
from townhall.worker.runner import preset_for

logger = logging.getLogger("townhall.launcher")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def preset_program(command: str) -> str | None:
    """The program a preset command runs: its first word after any ``NAME=value`` prefixes (the command
    runs under ``sh -c``, so those are environment assignments)."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: sh will say so at run time; judge the plain words
        words = command.split()
    return next((w for w in words if not _ASSIGNMENT.match(w)), None)


def missing_program(preset: AgentCliPreset, town_root: Path) -> str | None:
    """The preset's program if it cannot be run from here, else ``None``. A bare name is looked up on
    ``PATH`` (the preset's own ``env.PATH`` if it sets one); a path is taken relative to the preset's
    ``workdir`` (else the town root) and must be an executable file."""
    program = preset_program(preset.command)
    if program is None:
        return None
    if "/" in program:
        path = town_root / (preset.workdir or ".") / Path(program).expanduser()
        return None if path.is_file() and os.access(path, os.X_OK) else program
    search = preset.env.get("PATH", os.environ.get("PATH", os.defpath))
    return None if shutil.which(program, path=search) else program


class LocalLauncher:
    name = "local"

    def preflight(self, town: Town, cli: str) -> None:
        try:
            preset = preset_for(town, cli)
        except LookupError as exc:
            raise InvalidInput("cli", str(exc)) from exc
        program = missing_program(preset, town.root)
        if program is not None:
            raise InvalidInput(
                "cli",
                f"CLI preset '{preset.name}' runs '{program}', which is not found on PATH: install it, or fix "
                f"[agent_clis.{preset.name}] command in tinytown.toml",
            )

    async def launch(self, agent: Agent, town_root: Path) -> None:
        if not is_safe_agent_name(agent.name):
            # A record written by another tool (or an attacker with Redis access): its name would
            # become a path outside the town and an argument of the worker's command line.
            logger.error("refusing to start a worker for agent record %s: its name %r breaks the agent name "
                      "rule (letters, digits, '.', '_', '-', starting with a letter or digit)", agent.id,
                      agent.name[:80])
            raise Conflict(f"agent {agent.id} has a name that breaks the agent name rule; not started")
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
