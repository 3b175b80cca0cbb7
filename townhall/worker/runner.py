"""Running the agent's CLI preset on one unit of work.

``sh -c <preset command>`` in its own process group (so a stop kills the whole tree), the prompt on
stdin, cwd the town root (or the preset's ``workdir``), env ``TINYTOWN_AGENT_ID``/``TINYTOWN_AGENT_NAME``
(plus the preset's ``env``), stdout and stderr appended to ``.tt/logs/<name>_round_<n>.log``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from townhall.config import BUILTIN_CLIS, AgentCliPreset, Town

TAIL_BYTES = 4096
KILL_GRACE_SECS = 2.0


def preset_for(town: Town, cli: str) -> AgentCliPreset:
    """The agent's preset: configured ``[agent_clis]`` first, then the built-in commands. A command
    string that is not a preset name is never run (contract §7)."""
    config = town.config
    name = cli.strip() or config.default_cli
    if name in config.agent_clis:
        return config.agent_clis[name]
    if name in BUILTIN_CLIS:
        return AgentCliPreset(name=name, command=BUILTIN_CLIS[name])
    raise LookupError(f"CLI preset '{name}' is not configured in [agent_clis]")


def build_prompt(agent_name: str, description: str, task_id: str | None) -> str:
    lines = [f"You are agent '{agent_name}' in a Tinytown town.", ""]
    if task_id:
        lines += [f"Task {task_id}:", ""]
    lines += [description.strip(), "",
              "Do the task in this directory. Your final output is recorded as the task's result; "
              "exit with a non-zero status if the task cannot be done."]
    return "\n".join(lines) + "\n"


def tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class CliRun:
    """One started CLI process."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    async def start(cls, town: Town, preset: AgentCliPreset, *, agent_id: str, agent_name: str,
                    prompt: str, log_path: Path) -> CliRun:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **preset.env, "TINYTOWN_AGENT_ID": agent_id, "TINYTOWN_AGENT_NAME": agent_name}
        cwd = town.root / preset.workdir if preset.workdir else town.root
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                "sh", "-c", preset.command,
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log,
                cwd=cwd, env=env, start_new_session=True,
            )
        run = cls(process, log_path)
        assert process.stdin is not None
        try:
            process.stdin.write(prompt.encode())
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the CLI does not read its prompt: its business
        finally:
            process.stdin.close()
        return run

    async def wait(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if still running after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout)
        except asyncio.TimeoutError:
            return None

    async def kill(self) -> None:
        """SIGTERM the process group, SIGKILL it after a grace period."""
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            if await self.wait(grace) is not None:
                break
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of the group
        except ProcessLookupError:
            pass

    def output_tail(self) -> str:
        return tail(self.log_path)
