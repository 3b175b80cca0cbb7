"""At-least-once delivery under SIGKILL (contract §7), in lists and streams mode.

Three workers whose CLI is a small script take 200 tasks (half through the backlog, half assigned
directly) while the test SIGKILLs workers at random mid-task and restarts them. Every task must end
``completed`` — recorded and counted exactly once — and none may be lost; re-execution is allowed.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.workers import executions, fake_town, reap_workers, start_worker
from townhall.config import load_town
from townhall.domain import TaskState
from townhall.plugins import collect_registry, make_plugin_manager
from townhall.services.town import open_town_services

TASKS = 200
WORKERS = 3
KILLS = 8



@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    yield
    reap_workers()

@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_sigkill_chaos_loses_nothing(tmp_path: Path, town_name: str, redis_url: str,
                                           aredis: aioredis.Redis, streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams, heartbeat=1, visibility=2)
    services = open_town_services(load_town(tmp_path), aredis, collect_registry(make_plugin_manager()))
    agents = [await services.agents.spawn(f"w{i}", launch=False) for i in range(WORKERS)]
    task_ids: list[str] = []
    for i in range(TASKS // 2):
        task_ids.append((await services.backlog.add(f"shared {i} SLEEP=0.05")).id)
        assignment = await services.tasks.assign(agents[i % WORKERS].name, f"direct {i} SLEEP=0.05")
        task_ids.append(assignment.task.id)

    rng = random.Random(1234)
    procs: dict[str, subprocess.Popen[bytes]] = {a.id: start_worker(tmp_path, a.name, a.id) for a in agents}
    names = {a.id: a.name for a in agents}
    deadline = time.monotonic() + 55
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            victim = rng.choice(list(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = start_worker(tmp_path, names[victim], victim)
        while time.monotonic() < deadline:
            counts = await services.store.tasks.counts()
            if counts[TaskState.COMPLETED] == TASKS:
                break
            await asyncio.sleep(0.2)
    finally:
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
    assert await services.store.tasks.completed_total() == TASKS  # each counted once
    finals = await services.store.agents.get_many([a.id for a in agents])
    assert sum(a.tasks_completed for a in finals if a) == TASKS
    ran = {task for task, _ in executions(tmp_path)}
    assert set(task_ids) <= ran  # every task really ran (some maybe twice)
    for agent in agents:
        assert await aredis.llen(services.store.keys.processing(agent.id)) == 0
    assert await services.store.backlog.length() == 0
    if streams:
        assert await services.store.docket.pending_count() == 0
