"""The worker processes of a chaos test and what Redis says about them, so that the chaos is paced by
what the workers do, not by the clock: a worker is *up* once its process holds its agent's liveness key
(``host:pid:token``), *running* a task while the record says ``Working`` on it and the CLI process group
recorded for the agent is a child of that very process, *dead* once its process exited with the agent
``Stopped``/``Error``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Awaitable, Callable

from tests.support.workers import start_worker
from townhall.domain import DEAD_AGENT_STATES, Agent, AgentState, TaskState
from townhall.services.town import TownServices
from townhall.waits import event_within

#: ``tt agent-loop`` exits so when the agent's CLI cannot run (the agent is left in ``Error``).
EXIT_BROKEN = 4


class LiveWorkers:
    """One worker process per agent of ``agents`` (a successor replaces a dead one), for the tasks
    ``task_ids`` (a list that may grow); work waiting in the mailbox of ``stranded_with`` (an agent that
    is dead most of the time) does not count as work left for a live worker."""

    def __init__(self, services: TownServices, root: Path, agents: dict[str, Agent], task_ids: list[str], *,
                 stranded_with: str) -> None:
        self.store, self.root, self.agents = services.store, root, agents
        self.task_ids, self.stranded_with = task_ids, stranded_with
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0
        self.started_at = time.monotonic()
        self._work_left: tuple[float, bool, int] = (0.0, True, 0)  # when, what, of how many tasks
        self._up_since: dict[int, float] = {}  # worker pid → when it was first seen up

    def start(self, agent_id: str) -> None:
        self.procs[agent_id] = start_worker(self.root, self.agents[agent_id].name, agent_id)
        self.starts += 1

    def gone(self, agent_id: str) -> bool:
        return self.procs[agent_id].poll() is not None

    async def up(self, agent_id: str) -> bool:
        """Its current worker process runs and has registered: it holds the agent's liveness key."""
        proc = self.procs[agent_id]
        if proc.poll() is not None:
            return False
        holder = await self.store.liveness.holder(agent_id)
        if holder is None or holder.rsplit(":", 2)[-2:-1] != [str(proc.pid)]:
            return False
        self._up_since.setdefault(proc.pid, time.monotonic())
        return True

    async def up_for(self, agent_id: str) -> float:
        """How long its current worker has been seen up (0: it is not)."""
        if not await self.up(agent_id):
            return 0.0
        return time.monotonic() - self._up_since[self.procs[agent_id].pid]

    async def any_up(self, agent_ids: list[str]) -> bool:
        return any([await self.up(agent_id) for agent_id in agent_ids])

    async def running(self, agent_id: str) -> str | None:
        """The task whose CLI the agent's current worker runs now, if any (not one a killed predecessor
        left ``Working``: the recorded CLI must be this worker's child)."""
        agent = await self.store.agents.get(agent_id)
        if agent is None or agent.state is not AgentState.WORKING or not agent.current_task:
            return None
        group = await self.store.liveness.recorded_cli(agent_id)
        pgid = group.rpartition(":")[2] if group else ""
        if not pgid.isdigit() or _parent_of(int(pgid)) != self.procs[agent_id].pid or not await self.up(agent_id):
            return None
        return agent.current_task

    async def state(self, agent_id: str) -> AgentState | None:
        agent = await self.store.agents.get(agent_id)
        return agent.state if agent else None

    async def dead(self, agent_id: str) -> bool:
        """Its worker has exited and the record is Stopped/Error: only a restart brings it back."""
        return self.gone(agent_id) and await self.state(agent_id) in DEAD_AGENT_STATES

    async def work_left(self) -> bool:
        """Some task is open that a live worker could run; looked up at most every half second, unless
        tasks were added."""
        at, left, count = self._work_left
        if time.monotonic() - at < 0.5 and count == len(self.task_ids):
            return left
        records = await self.store.tasks.get_many(self.task_ids)
        left = any(t is not None and not t.state.is_terminal
                   and not (t.assigned_to == self.stranded_with and t.state is TaskState.ASSIGNED) for t in records)
        self._work_left = (time.monotonic(), left, len(records))
        return left

    async def registered(self, agent_id: str, *, took_work: bool) -> bool:
        """The current worker is up (``took_work``: and has been working), or it has already exited
        after breaking on work (the agent in ``Error``). A worker that exited otherwise fails the test."""
        agent = await self.store.agents.get(agent_id)
        if self.gone(agent_id):
            if agent is not None and agent.state is AgentState.ERROR and self.procs[agent_id].returncode == EXIT_BROKEN:
                return True
            raise AssertionError(f"worker of {self.agents[agent_id].name} exited {self.procs[agent_id].returncode} "
                                 f"with the agent {agent.state if agent else None}; see {self.log(agent_id)}")
        if not await self.up(agent_id):
            return False
        working = agent is not None and (agent.state is AgentState.WORKING or agent.rounds_completed > 0)
        return working or not took_work

    def log(self, agent_id: str) -> Path:
        return self.root / ".tt" / "logs" / f"test-{self.agents[agent_id].name}.log"

    async def until_all_take_work(self, deadline: float) -> None:
        """Wait until every worker has registered and taken work (polling Redis)."""
        waiting = set(self.procs)
        while waiting:
            for agent_id in list(waiting):
                if await self.registered(agent_id, took_work=True):
                    waiting.discard(agent_id)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers never took work: {sorted(self.agents[a].name for a in waiting)}")
            await asyncio.sleep(0.05)

    @staticmethod
    async def until(what: str, condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
        """Poll ``condition`` until it is true; fail the test (``what`` did not happen) after ``timeout``."""
        since = time.monotonic()
        while not await condition():
            assert time.monotonic() - since < timeout, f"{what} within {timeout} s"
            await asyncio.sleep(0.05)

    def stop_all(self) -> None:
        """SIGTERM every worker still running and wait for it (SIGKILL after 20 s, failing the test)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise




def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]) if len(fields) > 1 else None
