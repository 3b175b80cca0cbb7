"""The ordering rule (issue 11 item 1) with real processes: a task handed to an agent is visible to its
worker only together with a record that says so, and a worker never drops a task silently."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.handover import reclaim_to_idle_worker
from tests.support.workers import executions, fake_town, start_worker
from townhall.domain import AgentState, TaskAssignBody, TaskState
from townhall.queues import task_assign_message
from townhall.testing.seed import TownSeed


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_reclaim_to_an_idle_worker_always_runs_the_task(tmp_path: Path, town_name: str, redis_url: str,
                                                              aredis: aioredis.Redis, streams: bool) -> None:
    await reclaim_to_idle_worker(tmp_path, town_name, redis_url, aredis, rounds=15, streams=streams)


async def test_a_worker_leaves_a_task_with_the_agent_its_record_names(tmp_path: Path, town_name: str,
                                                                       redis_url: str, aredis: aioredis.Redis,
                                                                       seed: TownSeed) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=2)
    store = seed.store
    bob, carol = await seed.agent("bob"), await seed.agent("carol", AgentState.STOPPED)
    lost = await seed.task(TaskState.ASSIGNED, "only bob was told", assigned_to=carol.id)
    held = await seed.assigned_task(carol, "carol was told too")
    for task in (lost, held):
        await store.messages.send(task_assign_message(task.id, bob.id))

    proc = start_worker(tmp_path, "bob", bob.id)
    assert proc.wait(timeout=30) == 0

    assert executions(tmp_path) == []  # not bob's to run
    inbox = [e.message.body.task_id for e in await store.messages.peek(carol.id)  # type: ignore[union-attr]
             if e.message is not None and isinstance(e.message.body, TaskAssignBody)]
    assert sorted(inbox) == sorted([lost.id, held.id])  # the lost one handed over, the held one not doubled
    assert all(e.message and e.message.to == carol.id for e in await store.messages.peek(carol.id))
    assert [t.state for t in await store.tasks.get_many([lost.id, held.id]) if t] == [TaskState.ASSIGNED] * 2
    log = (tmp_path / ".tt" / "logs" / "test-bob.log").read_text()
    assert f"not running task {lost.id}: its record assigns it to {carol.id}; handed to that agent's inbox" in log
    assert f"not running task {held.id}: its record assigns it to {carol.id}, which already holds it" in log
