"""Arranging a town's records directly through the store, as the scenarios of reference §11.1 do."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from townhall.domain import (
    Agent,
    AgentState,
    Mission,
    MissionState,
    Task,
    TaskState,
    new_id,
    utc_now,
)
from townhall.queues import task_assign_message
from townhall.store import TownStore


class TownSeed:
    """Writes agents, tasks, inbox messages and missions of one town."""

    def __init__(self, redis: aioredis.Redis, town: str) -> None:
        self.store = TownStore(redis, town)

    async def agent(self, name: str, state: AgentState = AgentState.STARTING, *,
                    idle_for: timedelta | None = None, current_task: str | None = None) -> Agent:
        agent = Agent.new(name, "test-cli")
        agent.state = state
        agent.current_task = current_task
        if idle_for is not None:
            agent.last_active_at = utc_now() - idle_for
        return await self.store.agents.create(agent)

    async def backlog_task(self, description: str = "queued work") -> Task:
        task = await self.store.tasks.create(Task.new(description))
        await self.store.backlog.push(task.id)
        return task

    async def assigned_task(self, agent: Agent, description: str = "assigned work") -> Task:
        """A task assigned directly to ``agent`` and not yet taken: a ``task_assign`` in its inbox."""
        task = await self.store.tasks.create(Task.new(description, state=TaskState.ASSIGNED, assigned_to=agent.id))
        await self.store.messages.send(task_assign_message(task.id, agent.id))
        return task

    async def task(self, state: TaskState, description: str = "work", assigned_to: str | None = None) -> Task:
        return await self.store.tasks.create(Task.new(description, state=state, assigned_to=assigned_to))

    async def active_mission(self, ticked_at: datetime | None = None) -> Mission:
        now = utc_now()
        mission = Mission(id=new_id(), state=MissionState.RUNNING, created_at=now, updated_at=now,
                          dispatcher_last_tick_at=ticked_at or now)
        await self.store.missions.save(mission)
        await self.store.missions.add_active(mission.id)
        return mission


async def wait_reconciled(redis: aioredis.Redis, town: str, timeout: float = 20.0) -> None:
    """A townhall rebuilds its indexes once at startup; arrange further records only after that."""
    key = TownStore(redis, town).keys.reconciled_at
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await redis.exists(key):
        if loop.time() > deadline:
            raise TimeoutError(f"townhall never reconciled town {town}")
        await asyncio.sleep(0.02)
