"""Running the agent's CLI preset on one unit of work.

``sh -c <preset command>`` in its own process group (so a stop or a timeout kills the whole tree), the
prompt on stdin, cwd the town root (or the preset's ``workdir``), the allow-listed environment of
:mod:`townhall.worker.cli_env`, stdout and stderr written to a log of its own (:func:`run_log_path`),
whose tail is the run's result.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from townhall.config import BUILTIN_CLIS, AgentCliPreset, Town
from townhall.worker.cli_env import cli_environment

if TYPE_CHECKING:
    from townhall.services.lifecycle import AgentLifecycle

log = logging.getLogger("townhall.worker")

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


def run_log_path(town: Town, agent_name: str, run_name: str) -> Path:
    """``.tt/logs/<agent>/<run>.log``; ``run_name`` is ``<task id>.<attempt>`` for a task, ``message-<id>``
    for a plain ``task``/``query`` message."""
    return town.state_dir / "logs" / agent_name / f"{run_name}.log"


def build_prompt(agent_name: str, description: str, task_id: str | None) -> str:
    lines = [f"You are agent '{agent_name}' in a Tinytown town.", ""]
    if task_id:
        lines += [f"Task {task_id}:", ""]
    lines += [description.strip(), "",
              "Do the task in this directory. Your final output is recorded as the task's result; "
              "exit with a non-zero status if the task cannot be done."]
    return "\n".join(lines) + "\n"


def first_line(text: str) -> str:
    """The first non-empty line of a CLI's output, shortened (for log lines and attempt reasons)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]


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

    @property
    def pgid(self) -> int:
        """The CLI's process group (its own session: the group id is its pid)."""
        return self.process.pid

    @classmethod
    async def start(cls, town: Town, preset: AgentCliPreset, *, agent_id: str, agent_name: str,
                    task_id: str | None, prompt: str, log_path: Path) -> CliRun:
        """Start the CLI; its log is truncated first, so the log (and the result) is this run's only."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = cli_environment(town, preset, os.environ, agent_id=agent_id, agent_name=agent_name, task_id=task_id)
        cwd = town.root / preset.workdir if preset.workdir else town.root
        with log_path.open("wb") as log:
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
        _kill_group(self.process.pid)  # leftovers of the group

    def output_tail(self) -> str:
        return tail(self.log_path)


async def kill_orphaned_cli(lifecycle: AgentLifecycle, host: str, agent_id: str) -> None:
    """A CLI that a SIGKILLed predecessor (on this ``host``) left running is killed before this worker
    runs its own."""
    group = await lifecycle.orphaned_cli(agent_id)
    if group is None:
        return
    recorded_host, _, pgid = group.rpartition(":")
    if recorded_host == host and pgid.isdigit() and await kill_orphan(int(pgid), agent_id):
        log.warning("killed the CLI (process group %s) a previous worker of this agent left running", pgid)
    await lifecycle.cli_ended(agent_id, group)


async def kill_orphan(pgid: int, agent_id: str) -> bool:
    """Kill the process group ``pgid`` left by a dead worker of ``agent_id`` (SIGTERM, then SIGKILL),
    if it still runs and is that agent's CLI: a member's environment names the agent, so a reused
    process id is never hit. ``True`` if it was killed."""
    if not _runs_cli_of(pgid, agent_id):
        return False
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_GRACE_SECS
    while loop.time() < deadline and _group_alive(pgid):
        await asyncio.sleep(0.05)  # not ours to wait() for: it is another process's child
    _kill_group(pgid)
    return True


def _runs_cli_of(pgid: int, agent_id: str) -> bool:
    marker = f"TINYTOWN_AGENT_ID={agent_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and marker in (proc / "environ").read_bytes().split(b"\0"):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
