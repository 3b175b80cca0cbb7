"""Reclaim to an idle worker, many times over: the ordering rule under a real worker (issue 11).

A dead agent's task_assign is reclaimed to an agent whose worker is idle, blocked on its inbox; it reads
the message the moment it lands. Before the record and the message moved in one step, the worker could
read the message while the record still named the dead agent, skip it as "reassigned" and lose the task.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

from tests.support.workers import executions, fake_town, start_worker
from townhall.domain import AgentState, TaskState
from townhall.testing.process import TownhallProcess
from townhall.testing.seed import TownSeed, wait_reconciled


async def _until(what: str, check: Callable[[], Awaitable[object]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.01)


async def reclaim_to_idle_worker(root: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, *,
                                 rounds: int, streams: bool = False, round_timeout: float = 20) -> None:
    """``rounds`` times: a task assigned to Stopped ``alice`` is reclaimed (REST ``{"to": "bob"}``) to
    idle ``bob``; each must run on bob and end ``completed``, and bob's worker must never skip one."""
    fake_town(root, town_name, redis_url, streams=streams)
    server = TownhallProcess(root).start()
    worker = None
    try:
        await wait_reconciled(aredis, town_name)
        seed = TownSeed(aredis, town_name)
        store = seed.store
        alice = await seed.agent("alice", AgentState.STOPPED)
        worker = start_worker(root, "bob")

        async def bob_id() -> str | None:
            return next((a.id for a in await store.agents.list_all() if a.name == "bob"), None)

        await _until("bob registered", bob_id, round_timeout)
        bob = await bob_id()
        assert bob is not None
        bob_agent_id: str = bob

        async def bob_idle() -> bool:
            agent = await store.agents.get(bob_agent_id)
            return agent is not None and agent.state is AgentState.IDLE

        task_ids: list[str] = []
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
            for i in range(rounds):
                await _until("bob idle", bob_idle, round_timeout)
                task = await seed.assigned_task(alice, f"reclaimed work {i}")
                task_ids.append(task.id)
                reply = await api.post("/v1/reclaim", json={"to": "bob", "from": "alice"})
                assert reply.status_code == 200 and reply.json()["reclaimed"] == 1, reply.text

                async def finished() -> bool:
                    record = await store.tasks.get(task.id)
                    return record is not None and record.state.is_terminal

                await _until(f"round {i}: task {task.id} finished", finished, round_timeout)
        records = await store.tasks.get_many(task_ids)
        assert [(t.state, t.assigned_to) for t in records if t] == [(TaskState.COMPLETED, bob)] * rounds
        ran = [task for task, agent in executions(root) if agent == bob]
        assert sorted(ran) == sorted(task_ids)  # each ran on bob, exactly once
        assert await store.messages.inbox_len(alice.id) == 0
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
        server.stop()
    log = (root / ".tt" / "logs" / "test-bob.log").read_text()
    assert "not running task" not in log and "skipping task" not in log, log[-2000:]
