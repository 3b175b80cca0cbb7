"""Worker liveness keys ``tt:{town}:alive:{id}``: a String with a TTL that a live worker refreshes.

Only the value's owner may refresh or delete it, so a worker that lost its key to a successor (it was
presumed dead) learns so instead of overwriting it. Beside it, ``tt:{town}:cli:{id}`` names the process
group of the CLI the worker runs, so that a successor can kill a CLI its dead predecessor left behind.
"""

from __future__ import annotations

from townhall.domain.agents import AgentState
from townhall.store.agents import AGENT_PRELUDE
from townhall.store.context import Lua, SubStore

# KEYS[1] alive key. ARGV: value, ttl ms, takeover value ('' = none). Take the key if free, if already
# ours, or if it holds exactly the value we were told is a dead predecessor. Returns {ok, holder}.
ACQUIRE = r"""
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or (ARGV[3] ~= '' and cur == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, cur}
"""

# KEYS[1] alive key. ARGV: value, ttl ms. Refresh only our own key; a lapsed key is taken again.
REFRESH = r"""
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


# KEYS[1] alive key, KEYS[2] agent hash. ARGV: the state the caller saw. The worker is lost when no
# process holds its liveness key and the record is still in the state its heartbeat stopped in: then
# it becomes stopped, in the same step, so of several townhall replicas exactly one recovers its work.
DECLARE_LOST = AGENT_PRELUDE + r"""
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if agent_state(KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'state', 'stopped')
return 1
"""


class LivenessStore(SubStore):
    _acquire = Lua(ACQUIRE)
    async def acquire(self, agent_id: str, value: str, ttl_ms: int, *, takeover: str = "") -> tuple[bool, str]:
        ok, holder = await self._acquire(keys=[self._k.worker_alive(agent_id)], args=[value, ttl_ms, takeover])
        return bool(ok), holder

    _refresh = Lua(REFRESH)
    async def refresh(self, agent_id: str, value: str, ttl_ms: int) -> bool:
        return bool(await self._refresh(keys=[self._k.worker_alive(agent_id)], args=[value, ttl_ms]))

    async def release(self, agent_id: str, value: str) -> None:
        await self._ctx.release_if_held(self._k.worker_alive(agent_id), value)

    async def holder(self, agent_id: str) -> str | None:
        return await self._r.get(self._k.worker_alive(agent_id))

    async def record_cli(self, agent_id: str, group: str) -> None:
        await self._r.set(self._k.cli_group(agent_id), group)

    async def recorded_cli(self, agent_id: str) -> str | None:
        return await self._r.get(self._k.cli_group(agent_id))

    async def forget_cli(self, agent_id: str, group: str) -> None:
        await self._ctx.release_if_held(self._k.cli_group(agent_id), group)

    _declare_lost = Lua(DECLARE_LOST)
    async def declare_lost(self, agent_id: str, seen: AgentState) -> bool:
        """``Stopped`` if no worker holds the agent's key and its state is still ``seen``; ``True`` for
        the one caller that made the change (see ``DECLARE_LOST``)."""
        keys = [self._k.worker_alive(agent_id), self._k.agent(agent_id)]
        return bool(await self._declare_lost(keys=keys, args=[seen.value]))
