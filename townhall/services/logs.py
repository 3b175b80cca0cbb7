"""Logs over HTTP and ``tt logs``: a task's run log and an agent's worker log, read from the town's log
folder ``.tt/logs`` on this machine (``GET /v1/tasks/{id}/log``, ``GET /v1/agents/{agent}/log``).

Where a log is comes from names townhall builds itself — ``<agent name>/<task id>.<attempt>.log`` (the
worker's run logs) and ``<agent name>.log`` (the ``local`` launcher's worker log) — never from a path a
record holds, and whatever a record says (an agent name is checked before it becomes a path), the
resolved file (symlinks followed) must lie inside the resolved log folder, or it is not served.

Reading is bounded: a tail is found by reading backwards in blocks, the log is sent in chunks, and
following polls the file's size (no watcher threads), so one reader costs a block of memory whatever the
log's size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import msgspec

from townhall.config import Town
from townhall.domain import SUPERVISOR_ID, is_uuid
from townhall.domain.agents import is_safe_agent_name
from townhall.domain_errors import AgentNotFound, InvalidInput, LogNotFound, TaskNotFound
from townhall.services.agents import AgentService
from townhall.services.tasks import find_task, resolve_task_id
from townhall.store import TownStore
from townhall.waits import event_within

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
#: ``tail`` is at most this many lines.
MAX_TAIL = 10_000
#: How often a followed log is looked at for new lines.
FOLLOW_POLL_SECS = 0.25
_RUN_LOG = re.compile(r"^(?P<task>[0-9a-f-]{36})\.(?P<attempt>\d+)\.log$")


class LogFile(msgspec.Struct, frozen=True):
    """A log that may be served: its resolved path inside the log folder, and what it is."""

    path: Path
    title: str


def check_tail(tail: int | None) -> int | None:
    if tail is not None and (isinstance(tail, bool) or not 0 <= tail <= MAX_TAIL):
        raise InvalidInput("tail", f"tail must be a number of lines from 0 to {MAX_TAIL}, got {tail}")
    return tail


class LogService:
    def __init__(self, town: Town, store: TownStore, agents: AgentService) -> None:
        self.town = town
        self.store = store
        self.agents = agents
        self._closing = asyncio.Event()

    @property
    def folder(self) -> Path:
        return self.town.state_dir / "logs"

    # ---- which file --------------------------------------------------------------------------------
    async def task_log(self, task_id: str, attempt: int | None = None) -> LogFile:
        """The run log of the task's latest attempt (or of ``attempt``): in the folder of the agent the
        record names, else of whichever agent ran it last."""
        if attempt is not None and (isinstance(attempt, bool) or attempt < 1):
            raise InvalidInput("attempt", f"attempt must be 1 or more, got {attempt}")
        task = await find_task(self.store, task_id)  # a full id or a unique prefix of one
        agent = await self.store.agents.get(task.assigned_to) if task.assigned_to else None
        if agent is not None and is_safe_agent_name(agent.name):
            runs = (await self.store.attempts.limits(task.id)).attempts
            for k in [attempt] if attempt else range(max(runs, 1), 0, -1):
                path = self.folder / agent.name / f"{task.id}.{k}.log"
                if path.exists() or path.is_symlink():
                    return self._served(path, f"task {task.id} attempt {k}")
        found = self._search_runs(task.id, attempt)
        if found is None:
            which = f"attempt {attempt} of task {task.id}" if attempt else f"task {task.id}"
            raise LogNotFound(f"no run log of {which} on this townhall's machine (workers elsewhere keep "
                              "theirs: see docs/api.md, Logs)")
        return self._served(found[1], f"task {task.id} attempt {found[0]}")

    def _search_runs(self, task_id: str, attempt: int | None) -> tuple[int, Path] | None:
        """The task's run logs in every agent folder (a retried or re-queued task has no assignee): the
        highest attempt (or ``attempt``). Costs a lookup per agent folder, not per log."""
        best: tuple[int, float, Path] | None = None
        try:
            folders = [Path(e.path) for e in os.scandir(self.folder) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return None
        for folder in folders:
            for path in folder.glob(f"{task_id}.{attempt or '*'}.log"):
                match = _RUN_LOG.match(path.name)
                if match is None:
                    continue
                key = (int(match["attempt"]), path.lstat().st_mtime, path)
                if best is None or key[:2] > best[:2]:
                    best = key
        return (best[0], best[2]) if best else None

    async def agent_log(self, ref: str) -> LogFile:
        """The worker log of an agent (``.tt/logs/<name>.log``, where the ``local`` launcher writes it)."""
        agent = (await self.agents.resolve(ref)).agent
        if agent is None or agent.id == SUPERVISOR_ID:
            raise LogNotFound("the supervisor mailbox has no worker and no worker log")
        if not is_safe_agent_name(agent.name):
            log.warning("not serving a log for agent %s: its name breaks the agent name rule", agent.id)
            raise LogNotFound(f"agent {agent.id} has a name that cannot be a log file; no log served")
        path = self.folder / f"{agent.name}.log"
        if not (path.exists() or path.is_symlink()):
            raise LogNotFound(f"no worker log of agent '{agent.name}' on this townhall's machine (the local "
                              "launcher writes one; workers started elsewhere log where they run)")
        return self._served(path, f"agent {agent.name}")

    async def resolve(self, ref: str) -> LogFile:
        """``tt logs``: a task id's run log if a task has that id, else the agent's worker log; failing
        both, the run log of the task whose id starts with ``ref`` (4+ hex digits, as ``tt`` shows ids),
        so an agent named like a prefix (``beef``) keeps its log."""
        text = ref.strip()
        if is_uuid(text) and await self.store.tasks.get(text.lower()) is not None:
            return await self.task_log(text)
        try:
            return await self.agent_log(text)
        except AgentNotFound:
            try:
                task_id = await resolve_task_id(self.store, text)
            except (InvalidInput, TaskNotFound):
                raise AgentNotFound(text) from None
            return await self.task_log(task_id)

    def _served(self, path: Path, title: str) -> LogFile:
        """``path`` resolved, if it is a regular file inside the log folder (also resolved)."""
        try:
            real = path.resolve(strict=True)
            inside = real.is_relative_to(self.folder.resolve(strict=True)) and real.is_file()
        except (OSError, RuntimeError):
            inside = False
        if not inside:
            log.warning("not serving %s: %s is not a file inside the town's log folder %s", title, path,
                        self.folder)
            raise LogNotFound(f"the log of {title} is not a file inside the town's log folder; not served")
        return LogFile(path=real, title=title)

    # ---- reading -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Shutdown begins: followed logs end."""
        self._closing.set()

    async def read(self, log_file: LogFile, *, tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        """The log's bytes in chunks: all of it, or its last ``tail`` lines; with ``follow`` then what
        is appended, until the reader goes away or townhall shuts down. A log that is truncated or
        replaced (a new worker life) is read again from its start."""
        check_tail(tail)
        try:
            handle = log_file.path.open("rb")
        except OSError as exc:
            raise LogNotFound(f"the log of {log_file.title} cannot be read: {exc.strerror}") from None
        return self._chunks(handle, log_file, tail, follow)

    async def _chunks(self, handle: BinaryIO, log_file: LogFile, tail: int | None,
                      follow: bool) -> AsyncIterator[bytes]:
        try:
            if tail is not None:
                handle.seek(await asyncio.to_thread(_tail_offset, handle, tail))
            while True:
                chunk = await asyncio.to_thread(handle.read, CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not follow or await event_within(self._closing, FOLLOW_POLL_SECS):
                    return
                if _replaced(handle, log_file.path):
                    handle.close()
                    handle = log_file.path.open("rb")
        finally:
            handle.close()


def _tail_offset(handle: BinaryIO, lines: int) -> int:
    """Where the last ``lines`` lines of the open file begin (a last line without a newline counts)."""
    end = handle.seek(0, os.SEEK_END)
    if lines == 0:
        return end
    position, wanted = end, lines
    if end and _byte_at(handle, end - 1) == b"\n":
        wanted += 1  # the final newline ends the last line; it does not start another
    while position > 0:
        step = min(CHUNK, position)
        position -= step
        handle.seek(position)
        block = handle.read(step)
        count = block.count(b"\n")
        if count >= wanted:
            cut = len(block)
            for _ in range(wanted):
                cut = block.rindex(b"\n", 0, cut)
            return position + cut + 1
        wanted -= count
    return 0


def _byte_at(handle: BinaryIO, offset: int) -> bytes:
    handle.seek(offset)
    return handle.read(1)


def _replaced(handle: BinaryIO, path: Path) -> bool:
    """The open log was truncated (shorter than what was read) or another file now has its name."""
    try:
        now = path.stat()
    except OSError:
        return False
    opened = os.fstat(handle.fileno())
    return (now.st_ino, now.st_dev) != (opened.st_ino, opened.st_dev) or now.st_size < handle.tell()
