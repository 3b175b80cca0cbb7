"""Agent records: ``tt:{town}:agent:{id}`` hashes plus our index set of agent ids."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import msgspec

from townhall.domain.agents import Agent, AgentState, AgentType, SpawnMode
from townhall.domain.events import TownEvent
from townhall.store.context import LUA_ALLOWED, Lua, StoreContext, SubStore, csv, lua_set, patch_values, write_args
from townhall.store.codec import agent_from_hash, agent_to_hash, split_fields
from townhall.store.events import EVENT_LUA, town_event_fields
from townhall.store.overview import OverviewStore
from townhall.store.reconcile import SCAN_COUNT, escape_glob

ACTIVITY_KEEP = 10
ACTIVITY_TTL_SECS = 3600
STOP_TTL_SECS = 3600
SPAWN_LOCK_TTL_MS = 5000
#: Agent keys a lookup of records missing from our index looks at, at most.
UNINDEXED_SCAN_LIMIT = 10_000


# States are read as AgentState.parse reads them.
AGENT_PRELUDE = (
    f"local KNOWN = {lua_set(AgentState)}\n"
    + f"local FALLBACK = '{AgentState._fallback}'\n"
    + LUA_ALLOWED
    + r"""
local function agent_state(key)
  local raw = redis.call('HGET', key, 'state')
  if not raw then return FALLBACK end
  local s = string.lower(string.match(raw, '^%s*(.-)%s*$'))
  if KNOWN[s] then return s end
  return FALLBACK
end
"""
)

# KEYS[1] agent hash, KEYS[2] town event stream. ARGV: allowed csv ('' = any), nset, field, value ×nset,
# fields to delete... Never creates a record: a pruned agent must not come back as a partial hash. A
# change of state is announced (agent_state_changed) in the same step.
AGENT_WRITE = AGENT_PRELUDE + EVENT_LUA + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local old = agent_state(KEYS[1])
if not allowed(ARGV[1], old) then return {0, old} end
local nset = tonumber(ARGV[2])
if nset > 0 then
  local pairs_ = {}
  for i = 3, 2 + 2 * nset do pairs_[#pairs_ + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(pairs_))
end
if #ARGV >= 3 + 2 * nset then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + 2 * nset)) end
local new = agent_state(KEYS[1])
if new ~= old then
  local id, name = unpack(redis.call('HMGET', KEYS[1], 'id', 'name'))
  emit_event(KEYS[2], {event_type = 'agent_state_changed', agent_id = id or nil, old_state = old,
                       new_state = new, message = string.format('agent %s: %s -> %s', name or id or '?', old, new)})
end
return {1, old}
"""

# KEYS[1] agent hash. ARGV: field, increment. Returns the new value, or false if no record.
AGENT_INCR = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
"""

# KEYS[1] agent hash. ARGV: task id. Clears current_task only if it still points at that task.
AGENT_CLEAR_CURRENT_TASK = r"""
if redis.call('HGET', KEYS[1], 'current_task') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'current_task')
  return 1
end
return 0
"""

# KEYS[1] agent hash, KEYS[2] agent index set, KEYS[3..#KEYS-1] keys owned by the agent (inbox, urgent,
# ...), KEYS[#KEYS] the town event stream. ARGV: agent id, allowed states csv ('' = any). Deletes
# everything only if the state is allowed, so a prune never removes an agent that was restarted
# meanwhile; announces agent_removed. Returns 1 if deleted.
AGENT_DELETE = AGENT_PRELUDE + EVENT_LUA + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
local old = agent_state(KEYS[1])
if not allowed(ARGV[2], old) then return 0 end
local name = redis.call('HGET', KEYS[1], 'name')
redis.call('DEL', KEYS[1])
for i = 3, #KEYS - 1 do redis.call('DEL', KEYS[i]) end
redis.call('SREM', KEYS[2], ARGV[1])
emit_event(KEYS[#KEYS], {event_type = 'agent_removed', agent_id = ARGV[1], old_state = old,
                         message = string.format('agent %s removed', name or ARGV[1])})
return 1
"""


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


class AgentStore(SubStore):
    def __init__(self, ctx: StoreContext) -> None:
        super().__init__(ctx)
        self._overview = OverviewStore(ctx)

    async def create(self, agent: Agent) -> Agent:
        """Write a new record and announce it (``agent_created``) in the same transaction."""
        created = TownEvent(event_type="agent_created", agent_id=agent.id, new_state=agent.state.value,
                            message=f"agent {agent.name} created ({agent.state.value})")
        await self.save(agent, announce=created)
        return agent

    async def save(self, agent: Agent, *, announce: TownEvent | None = None) -> None:
        """Replace the whole record (HDEL of absent optionals + HSET, one transaction)."""
        write = agent_to_hash(agent)
        key = self._k.agent(agent.id)
        async with self._r.pipeline(transaction=True) as pipe:
            if write.delete:
                pipe.hdel(key, *write.delete)
            pipe.hset(key, mapping=write.set)
            pipe.sadd(self._k.agent_index, agent.id)
            if announce is not None:
                pipe.xadd(self._k.events, town_event_fields(announce), maxlen=self._ctx.event_retention,
                          approximate=True)
            await pipe.execute()

    async def get(self, agent_id: str) -> Agent | None:
        return await self._ctx.hash_record(self._k.agent(agent_id), agent_from_hash, f"agent {agent_id}")

    async def get_many(self, agent_ids: Sequence[str]) -> list[Agent | None]:
        """Records in the order asked, ``None`` where missing or unreadable; one round trip."""
        return await self._ctx.hash_records([self._k.agent(a) for a in agent_ids], agent_from_hash)

    async def ids(self) -> list[str]:
        return sorted(await self._r.smembers(self._k.agent_index))

    async def list_all(self) -> list[Agent]:
        """Every registered agent, oldest first, in one round trip. Index entries whose record vanished
        (deleted by another tool) are dropped from the index on the way."""
        return await self._overview.agents()

    async def find_unindexed(self, name: str, limit: int = UNINDEXED_SCAN_LIMIT) -> list[Agent]:
        """Agents named ``name`` that another tool (the original ``tt``) wrote without listing them in
        our index: a SCAN over ``agent:*`` that looks at no more than ``limit`` agent keys. Those
        found are added to the index, so the next lookup is an index hit."""
        found: list[Agent] = []
        seen = 0
        async for key in self._r.scan_iter(match=escape_glob(self._k.agent("")) + "*", count=SCAN_COUNT, _type="HASH"):
            seen += 1
            if seen > limit:
                break
            agent_id = key[len(self._k.agent("")):]
            if ":" in agent_id:
                continue  # another town whose name extends ours
            agent = await self.get(agent_id)
            if agent is not None and agent.name == name:
                found.append(agent)
        if found:
            await self._r.sadd(self._k.agent_index, *(a.id for a in found))
        return found

    async def update(self, agent_id: str, patch: AgentPatch) -> bool:
        """Apply a partial update atomically. ``False`` if the agent does not exist."""
        return await self.transition(agent_id, None, patch) is not None

    _write = Lua(AGENT_WRITE)
    async def transition(
        self,
        agent_id: str,
        allowed_from: Iterable[AgentState] | None,
        patch: AgentPatch,
    ) -> AgentState | None:
        """Compare-and-set: apply ``patch`` only if the current state is in ``allowed_from`` (any state
        if ``None``). Returns the state before the change, or ``None`` if the record is missing or its
        state was not allowed."""
        write = split_fields(patch_values(patch))
        applied, old = await self._write(
            keys=[self._k.agent(agent_id), self._k.events], args=[csv(allowed_from), *write_args(write)]
        )
        return AgentState.parse(old) if applied else None

    async def set_state(
        self, agent_id: str, state: AgentState, *, allowed_from: Iterable[AgentState] | None = None
    ) -> AgentState | None:
        return await self.transition(agent_id, allowed_from, AgentPatch(state=state))

    def _owned_keys(self, agent_id: str) -> list[str]:
        """The keys that belong to an agent besides its record (deleted with it)."""
        k = self._k
        return [k.inbox(agent_id), k.urgent(agent_id), k.activity(agent_id), k.stop(agent_id),
                k.processing(agent_id), k.worker_alive(agent_id)]

    async def delete(self, agent_id: str) -> bool:
        """Remove the record and everything keyed by the agent. ``True`` if a record existed."""
        return await self._ctx.delete_record(
            self._k.agent(agent_id), self._owned_keys(agent_id), member=agent_id, indexes=[self._k.agent_index]
        )

    _delete_if_state = Lua(AGENT_DELETE)
    async def delete_if_state(self, agent_id: str, states: Iterable[AgentState] | None) -> bool:
        """Like :meth:`delete`, but only while the agent's state is in ``states`` (any if ``None``)."""
        return bool(
            await self._delete_if_state(
                keys=[self._k.agent(agent_id), self._k.agent_index, *self._owned_keys(agent_id), self._k.events],
                args=[agent_id, csv(states)],
            )
        )

    _incr = Lua(AGENT_INCR)
    async def incr_tasks_completed(self, agent_id: str, by: int = 1) -> int | None:
        """``HINCRBY tasks_completed`` without resurrecting a deleted record; ``None`` if missing."""
        return await self._incr(keys=[self._k.agent(agent_id)], args=["tasks_completed", by])

    _clear_current_task = Lua(AGENT_CLEAR_CURRENT_TASK)
    async def clear_current_task(self, agent_id: str, task_id: str) -> bool:
        """Drop ``current_task`` only if it still points at ``task_id``."""
        return bool(
            await self._clear_current_task(keys=[self._k.agent(agent_id)], args=[task_id])
        )

    # ---- spawn lock: spawns check "name unused" and "below max_agents" before they write -------
    async def acquire_spawn_lock(self, token: str, ttl_ms: int = SPAWN_LOCK_TTL_MS) -> bool:
        return bool(await self._r.set(self._k.spawn_lock, token, nx=True, px=ttl_ms))

    async def release_spawn_lock(self, token: str) -> None:
        await self._ctx.release_if_held(self._k.spawn_lock, token)

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
        replies = await self._ctx.read_each("lrange", [self._k.activity(a) for a in agent_ids], 0, limit - 1)
        return {a: r if isinstance(r, list) else [] for a, r in zip(agent_ids, replies)}

    async def request_stop(self, agent_id: str) -> None:
        await self._r.set(self._k.stop(agent_id), "1", ex=STOP_TTL_SECS)

    async def clear_stop(self, agent_id: str) -> None:
        await self._r.delete(self._k.stop(agent_id))

    async def stop_requested(self, agent_id: str) -> bool:
        return bool(await self._r.exists(self._k.stop(agent_id)))
