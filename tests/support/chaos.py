"""SIGKILL chaos: workers killed at random mid-task and restarted; at-least-once delivery must hold."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.workers import executions, fake_town, start_worker
from townhall.config import load_town
from townhall.domain import TaskState
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices


async def sigkill_chaos(root: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, *,
                        streams: bool, tasks: int = 200, workers: int = 3, kills: int = 8,
                        deadline_secs: float = 55, seed: int = 1234) -> None:
    """Half the tasks through the backlog, half assigned directly; ``kills`` random SIGKILLs; then
    every task must be completed, recorded and counted exactly once, and no taken work left over."""
    fake_town(root, town_name, redis_url, streams=streams, heartbeat=1, visibility=2)
    services = build_services(load_town(root), aredis, load_plugins().registry)
    agents = [await services.agents.spawn(f"w{i}", launch=False) for i in range(workers)]
    task_ids: list[str] = []
    for i in range(tasks // 2):
        task_ids.append((await services.backlog.add(f"shared {i} SLEEP=0.05")).id)
        assignment = await services.tasks.assign(agents[i % workers].name, f"direct {i} SLEEP=0.05")
        task_ids.append(assignment.task.id)

    rng = random.Random(seed)
    procs: dict[str, subprocess.Popen[bytes]] = {a.id: start_worker(root, a.name, a.id) for a in agents}
    names = {a.id: a.name for a in agents}
    deadline = time.monotonic() + deadline_secs
    try:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            victim = rng.choice(list(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = start_worker(root, names[victim], victim)
        while time.monotonic() < deadline:
            counts = await services.store.tasks.counts()
            if counts[TaskState.COMPLETED] == len(task_ids):
                break
            await asyncio.sleep(0.2)
    finally:
        # A SIGTERM that lands while a just-restarted interpreter is still importing kills it by
        # signal before the worker exists; the exit-0 promise is about a running worker.
        for agent_id, proc in procs.items():
            await _wait_running(services, agent_id, proc)
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                assert proc.wait(timeout=15) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                raise

    records = await services.store.tasks.get_many(task_ids)
    unfinished = [(t.id, t.state.value) for t in records if t is not None and t.state is not TaskState.COMPLETED]
    assert unfinished == [] and all(t is not None for t in records)
    assert await services.store.tasks.completed_total() == len(task_ids)  # each counted once
    finals = await services.store.agents.get_many([a.id for a in agents])
    assert sum(a.tasks_completed for a in finals if a) == len(task_ids)
    ran = {task for task, _ in executions(root)}
    assert set(task_ids) <= ran  # every task really ran (some maybe twice)
    for agent in agents:
        assert await aredis.llen(services.store.keys.processing(agent.id)) == 0
    assert await services.store.backlog.length() == 0
    if streams:
        assert await services.store.docket.pending_count() == 0



async def _wait_running(services: TownServices, agent_id: str, proc: subprocess.Popen[bytes],
                        timeout: float = 30.0) -> None:
    """Until ``proc`` holds its agent's liveness key (``host:pid:token``): the worker is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        holder = await services.store.liveness.holder(agent_id)
        if holder and holder.split(":")[1:2] == [str(proc.pid)]:
            return
        await asyncio.sleep(0.05)
