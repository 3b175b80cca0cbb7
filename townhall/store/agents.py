"""Agent records: ``tt:{town}:agent:{id}`` hashes plus our index set of agent ids."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable, Sequence

import msgspec
from redis.exceptions import ResponseError

from townhall.domain import Agent, AgentState, AgentType, SpawnMode
from townhall.store.codec import agent_from_hash, agent_to_hash
from townhall.store.context import StoreContext, csv, hash_write, patch_values, write_args

log = logging.getLogger(__name__)

ACTIVITY_KEEP = 10
ACTIVITY_TTL_SECS = 3600
STOP_TTL_SECS = 3600
SPAWN_LOCK_TTL_MS = 5000


class AgentPatch(msgspec.Struct, kw_only=True):
    """A partial agent update. Leave a field ``UNSET`` to keep it; ``None`` removes an optional field."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    cli: str | msgspec.UnsetType = msgspec.UNSET
    nickname: str | None | msgspec.UnsetType = msgspec.UNSET
    role_id: str | None | msgspec.UnsetType = msgspec.UNSET
    parent_agent_id: str | None | msgspec.UnsetType = msgspec.UNSET
    spawn_mode: SpawnMode | msgspec.UnsetType = msgspec.UNSET
    agent_type: AgentType | msgspec.UnsetType = msgspec.UNSET
    state: AgentState | msgspec.UnsetType = msgspec.UNSET
    current_task: str | None | msgspec.UnsetType = msgspec.UNSET
    last_heartbeat: datetime | msgspec.UnsetType = msgspec.UNSET
    last_active_at: datetime | msgspec.UnsetType = msgspec.UNSET
    tasks_completed: int | msgspec.UnsetType = msgspec.UNSET
    rounds_completed: int | msgspec.UnsetType = msgspec.UNSET


class AgentStore:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._r = ctx.redis
        self._k = ctx.keys

    async def create(self, agent: Agent) -> Agent:
        await self.save(agent)
        return agent

    async def save(self, agent: Agent) -> None:
        """Replace the whole record (HDEL of absent optionals + HSET, one transaction)."""
        write = agent_to_hash(agent)
        key = self._k.agent(agent.id)
        async with self._r.pipeline(transaction=True) as pipe:
            if write.delete:
                pipe.hdel(key, *write.delete)
            pipe.hset(key, mapping=write.set)
            pipe.sadd(self._k.agent_index, agent.id)
            await pipe.execute()

    async def get(self, agent_id: str) -> Agent | None:
        try:
            raw = await self._r.hgetall(self._k.agent(agent_id))
        except ResponseError as exc:
            log.warning("agent %s unreadable: %s", agent_id, exc)
            return None
        return agent_from_hash(raw)

    async def get_many(self, agent_ids: Sequence[str]) -> list[Agent | None]:
        """Records in the order asked, ``None`` where missing or unreadable; one round trip."""
        if not agent_ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hgetall(self._k.agent(agent_id))
            replies = await pipe.execute(raise_on_error=False)
        return [agent_from_hash(r) if isinstance(r, dict) else None for r in replies]

    async def ids(self) -> list[str]:
        return sorted(await self._r.smembers(self._k.agent_index))

    async def list_all(self) -> list[Agent]:
        """Every registered agent, oldest first. Index entries whose record vanished (deleted by another
        tool) are dropped from the index on the way."""
        ids = await self.ids()
        records = await self.get_many(ids)
        agents: list[Agent] = []
        gone: list[str] = []
        for agent_id, agent in zip(ids, records):
            if agent is None:
                gone.append(agent_id)
            else:
                agents.append(agent)
        if gone:
            await self._forget_missing(gone)
        agents.sort(key=lambda a: (a.created_at, a.id))
        return agents

    async def _forget_missing(self, ids: list[str]) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.exists(self._k.agent(agent_id))
            exists = await pipe.execute()
        missing = [i for i, e in zip(ids, exists) if not e]
        if missing:
            await self._r.srem(self._k.agent_index, *missing)

    async def update(self, agent_id: str, patch: AgentPatch) -> bool:
        """Apply a partial update atomically. ``False`` if the agent does not exist."""
        return await self.transition(agent_id, None, patch) is not None

    async def transition(
        self,
        agent_id: str,
        allowed_from: Iterable[AgentState] | None,
        patch: AgentPatch,
    ) -> AgentState | None:
        """Compare-and-set: apply ``patch`` only if the current state is in ``allowed_from`` (any state
        if ``None``). Returns the state before the change, or ``None`` if the record is missing or its
        state was not allowed."""
        write = hash_write(patch_values(patch))
        applied, old = await self._ctx.scripts.agent_write(
            keys=[self._k.agent(agent_id)], args=[csv(allowed_from), *write_args(write)]
        )
        return AgentState.parse(old) if applied else None

    async def set_state(
        self, agent_id: str, state: AgentState, *, allowed_from: Iterable[AgentState] | None = None
    ) -> AgentState | None:
        return await self.transition(agent_id, allowed_from, AgentPatch(state=state))

    async def delete(self, agent_id: str) -> bool:
        """Remove the record and everything keyed by the agent. ``True`` if a record existed."""
        k = self._k
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(k.agent(agent_id))
            pipe.delete(
                k.inbox(agent_id),
                k.urgent(agent_id),
                k.activity(agent_id),
                k.stop(agent_id),
                k.processing(agent_id),
                k.worker_alive(agent_id),
            )
            pipe.srem(k.agent_index, agent_id)
            removed, _, _ = await pipe.execute()
        return bool(removed)

    async def delete_if_state(self, agent_id: str, states: Iterable[AgentState] | None) -> bool:
        """Like :meth:`delete`, but only while the agent's state is in ``states`` (any if ``None``)."""
        k = self._k
        return bool(
            await self._ctx.scripts.agent_delete(
                keys=[k.agent(agent_id), k.agent_index, k.inbox(agent_id), k.urgent(agent_id),
                      k.activity(agent_id), k.stop(agent_id), k.processing(agent_id), k.worker_alive(agent_id)],
                args=[agent_id, csv(states)],
            )
        )

    async def incr_tasks_completed(self, agent_id: str, by: int = 1) -> int | None:
        """``HINCRBY tasks_completed`` without resurrecting a deleted record; ``None`` if missing."""
        return await self._ctx.scripts.agent_incr(
            keys=[self._k.agent(agent_id)], args=["tasks_completed", by]
        )

    async def clear_current_task(self, agent_id: str, task_id: str) -> bool:
        """Drop ``current_task`` only if it still points at ``task_id``."""
        return bool(
            await self._ctx.scripts.agent_clear_current_task(keys=[self._k.agent(agent_id)], args=[task_id])
        )

    # ---- spawn lock: spawns check "name unused" and "below max_agents" before they write -------
    async def acquire_spawn_lock(self, token: str, ttl_ms: int = SPAWN_LOCK_TTL_MS) -> bool:
        return bool(await self._r.set(self._k.spawn_lock, token, nx=True, px=ttl_ms))

    async def release_spawn_lock(self, token: str) -> None:
        await self._ctx.scripts.lock_release(keys=[self._k.spawn_lock], args=[token])

    # ---- activity log and stop flag ---------------------------------------------------------
    async def add_activity(self, agent_id: str, text: str) -> None:
        key = self._k.activity(agent_id)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.lpush(key, text)
            pipe.ltrim(key, 0, ACTIVITY_KEEP - 1)
            pipe.expire(key, ACTIVITY_TTL_SECS)
            await pipe.execute()

    async def activity(self, agent_id: str, limit: int = 5) -> list[str]:
        return await self._r.lrange(self._k.activity(agent_id), 0, limit - 1)

    async def activity_many(self, agent_ids: Sequence[str], limit: int = 5) -> dict[str, list[str]]:
        """Newest ``limit`` activity lines of many agents, one round trip."""
        if not agent_ids:
            return {}
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.lrange(self._k.activity(agent_id), 0, limit - 1)
            replies = await pipe.execute(raise_on_error=False)
        return {a: r if isinstance(r, list) else [] for a, r in zip(agent_ids, replies)}

    async def request_stop(self, agent_id: str) -> None:
        await self._r.set(self._k.stop(agent_id), "1", ex=STOP_TTL_SECS)

    async def clear_stop(self, agent_id: str) -> None:
        await self._r.delete(self._k.stop(agent_id))

    async def stop_requested(self, agent_id: str) -> bool:
        return bool(await self._r.exists(self._k.stop(agent_id)))
