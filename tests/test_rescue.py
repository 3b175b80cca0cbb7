"""Lost workers are rescued once (issue 12): ``LivenessStore.declare_lost`` lets exactly one of several
townhall replicas stop an agent whose heartbeat lapsed, never one whose worker holds its key, and the
replicas' concurrent sweeps put its work back exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.workers import fake_town
from townhall.config import load_town
from townhall.domain import Agent, AgentState, Task, TaskState, utc_now
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices


async def lost_agent(services: TownServices, *, pool: str | None = None) -> tuple[Agent, Task]:
    """An agent Working on a shared task, whose worker stopped beating a minute ago."""
    agent = Agent.new("w1", "fake")
    agent.pool = pool
    agent.state = AgentState.WORKING
    agent.last_heartbeat = utc_now() - timedelta(minutes=1)
    await services.store.agents.create(agent)
    task = Task.new("shared")
    await services.queue.add_task(task)
    consumer = services.queue.consumer(agent.id, blocking=services.store.redis, visibility_timeout_secs=60)
    assert (await consumer.take()) is not None
    return agent, task


def town_services(tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis,
                  streams: bool = False) -> TownServices:
    fake_town(tmp_path, town_name, redis_url, streams=streams, stale_after=3)
    return build_services(load_town(tmp_path), aredis, load_plugins().registry)


async def test_declare_lost_once_and_never_under_a_live_worker(tmp_path: Path, town_name: str, redis_url: str,
                                                               aredis: aioredis.Redis) -> None:
    services = town_services(tmp_path, town_name, redis_url, aredis)
    agent, _ = await lost_agent(services)
    liveness = services.store.liveness
    assert await liveness.acquire(agent.id, "host:1:x", 60_000) == (True, "host:1:x")
    assert not await liveness.declare_lost(agent.id, AgentState.WORKING)  # its worker holds the key
    await liveness.release(agent.id, "host:1:x")
    assert not await liveness.declare_lost(agent.id, AgentState.IDLE)  # not the state that was seen
    results = await asyncio.gather(*(liveness.declare_lost(agent.id, AgentState.WORKING) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert (await services.store.agents.get(agent.id)).state is AgentState.STOPPED  # type: ignore[union-attr]


async def test_two_sweeping_replicas_rescue_a_lost_workers_work_once(tmp_path: Path, town_name: str,
                                                                    redis_url: str, aredis: aioredis.Redis) -> None:
    one = town_services(tmp_path, town_name, redis_url, aredis, streams=True)
    two = build_services(load_town(tmp_path), aredis, load_plugins().registry)
    agent, task = await lost_agent(one)
    lost = await asyncio.gather(one.rescue.sweep(), two.rescue.sweep())
    assert sorted(len(found) for found in lost) == [0, 1]
    record = await one.store.tasks.get(task.id)
    assert record is not None and record.state is TaskState.PENDING and record.assigned_to is None
    assert await one.store.backlog.list() == [task.id]
    assert await one.store.docket.pending_count() == 0
    activity = await one.store.agents.activity(agent.id)
    assert sum("heartbeat lost" in line for line in activity) == 1


async def test_a_lost_pool_agent_is_retired(tmp_path: Path, town_name: str, redis_url: str,
                                            aredis: aioredis.Redis) -> None:
    services = town_services(tmp_path, town_name, redis_url, aredis)
    agent, task = await lost_agent(services, pool="worker")
    assert [a.id for a in await services.rescue.sweep()] == [agent.id]
    assert await services.store.agents.get(agent.id) is None
    assert await services.store.backlog.list() == [task.id]
