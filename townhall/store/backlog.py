"""The shared backlog list ``tt:{town}:backlog`` of task ids (FIFO) and its atomic claim operations."""

from __future__ import annotations

from typing import Callable

from townhall.domain.ids import is_uuid
from townhall.domain.messages import Message
from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import Lua, SubStore
from townhall.store.json_codec import encode_message
from townhall.store.tasks import TASK_PRELUDE, task_script_keys

_CLAIMED = 1  # BACKLOG_CLAIM's reply for a claim that happened

# KEYS[7] backlog, KEYS[8] the list the message goes to (an inbox, or a worker's processing list).
# ARGV: id, agent_id, now, message json, require_record (1/0).
# Returns 0 not in backlog, 1 claimed, 2 popped but dropped (no record and one was required).
BACKLOG_CLAIM = TASK_PRELUDE + r"""
local id, agent, now, msg, require_record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('LREM', KEYS[7], 1, id) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old == nil then
  if require_record == '1' then return 2 end
else
  redis.call('HSET', KEYS[1], 'state', 'assigned', 'assigned_to', agent, 'updated_at', now)
  move(id, old, 'assigned')
end
redis.call('RPUSH', KEYS[8], msg)
return 1
"""

# KEYS[7] backlog. ARGV: id. LREM from the backlog and, if it was there, delete the task record.
BACKLOG_DISCARD = TASK_PRELUDE + r"""
if redis.call('LREM', KEYS[7], 1, ARGV[1]) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old ~= nil then
  history_forget(KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[1])
  move(ARGV[1], old, nil)
end
return 1
"""


class BacklogStore(SubStore):
    async def push(self, task_id: str) -> None:
        await self._r.rpush(self._k.backlog, task_id)

    async def list(self) -> list[str]:
        """Task ids in FIFO order; entries that are not UUIDs are skipped, as upstream does."""
        return [t for t in await self._r.lrange(self._k.backlog, 0, -1) if is_uuid(t)]

    async def length(self) -> int:
        return await self._r.llen(self._k.backlog)

    async def remove(self, task_id: str) -> bool:
        return bool(await self._r.lrem(self._k.backlog, 1, task_id))

    _discard = Lua(BACKLOG_DISCARD)
    async def discard(self, task_id: str) -> bool:
        """Remove from the backlog and, only if it was there, delete the task record (one step)."""
        return bool(await self._discard(keys=task_script_keys(self._k, task_id, self._k.backlog), args=[task_id]))

    async def claim(self, task_id: str, agent_id: str, message: Message) -> bool:
        """Take ``task_id`` out of the backlog for ``agent_id``: the task (if it has a record) becomes
        ``assigned`` to the agent and ``message`` (its task_assign) is appended to the agent's inbox —
        all or nothing. ``False`` if the task was not in the backlog (someone else got it)."""
        code = await self._claim(task_id, agent_id, encode_message(message), self._k.inbox(agent_id),
                                 require_record=False)
        return code == _CLAIMED

    async def assign_all(self, agent_id: str, make_message: Callable[[str], Message]) -> list[str]:
        """Claim every backlog task for ``agent_id`` in FIFO order; returns the ids assigned. Each task
        moves in its own atomic step, so concurrent callers never both get a task. Ids without a task
        record are removed and dropped (upstream behaviour)."""
        assigned: list[str] = []
        inbox = self._k.inbox(agent_id)
        while claimed := await self.claim_next(agent_id, inbox, lambda tid: encode_message(make_message(tid))):
            assigned.append(claimed[0])
        return assigned

    async def claim_next(self, agent_id: str, into: str, message_for: Callable[[str], str]) -> tuple[str, str] | None:
        """Claim the first backlog task that has a record for ``agent_id``, its task_assign message
        (``message_for(task_id)``, JSON) appended to the list ``into``, in one atomic step. Ids without
        a record are dropped on the way. Returns ``(task_id, message JSON)``; ``None`` when the
        backlog is empty."""
        while (head := await self._r.lindex(self._k.backlog, 0)) is not None:
            raw = message_for(head)
            if await self._claim(head, agent_id, raw, into, require_record=True) == _CLAIMED:
                return head, raw
        return None

    _claim_script = Lua(BACKLOG_CLAIM)
    async def _claim(self, task_id: str, agent_id: str, message_json: str, into: str, *, require_record: bool) -> int:
        return int(
            await self._ctx.durable(
                self._claim_script,
                task_script_keys(self._k, task_id, self._k.backlog, into),
                [task_id, agent_id, format_hash_time(utc_now()), message_json, "1" if require_record else "0"],
            )
        )
