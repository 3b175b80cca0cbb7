"""Handing a task to an agent or back to the shared queue: the record and the message (or backlog entry)
that announces it, written by one Lua script.

The ordering rule (issue 11): whatever tells a worker "run this task" becomes visible only together with
a task record that says the task is that worker's. A worker reading its inbox therefore never sees a
task_assign whose record still names the previous assignee (it would skip it, and the task would be
lost). Direct assignment, claim and assign-all already write both in one script
(:meth:`~townhall.store.tasks.TaskStore.create_with_message`, :data:`~townhall.store.backlog.BACKLOG_CLAIM`);
requeues go through :data:`~townhall.store.processing.SHARED_RETURN` (record ``pending`` and backlog
entry together). This module adds the other moves of existing work: reclaim to an agent, and a worker
leaving a task with the agent its record names.
"""

from __future__ import annotations

import enum

from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import Lua, SubStore
from townhall.store.json_codec import readdress_message
from townhall.store.messages import InboxEntry, Placement, placement_for
from townhall.store.tasks import TASK_PRELUDE, task_script_keys

_LEAVE_TRIES = 5

# KEYS[7] the list the entry is taken from (a dead agent's inbox or urgent list), KEYS[8] the target's
# inbox. ARGV: id, target agent, now, old entry, new entry, 'front'|'back'. The entry leaves its list,
# the open task (if any) becomes assigned to the target, the new entry reaches the target: all or
# nothing. Returns 0 when the entry was no longer there (someone else moved it), else 1.
REASSIGN_ENTRY = TASK_PRELUDE + r"""
local id, target, now, old_raw, new_raw, side = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('LREM', KEYS[7], 1, old_raw) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old ~= nil and not TERMINAL[old] then
  local assignee = redis.call('HGET', KEYS[1], 'assigned_to') or ''
  redis.call('HSET', KEYS[1], 'state', 'assigned', 'assigned_to', target, 'updated_at', now)
  redis.call('HDEL', KEYS[1], 'started_at')
  move(id, old, 'assigned')
  -- the same state with another assignee is still news (move announces only state changes)
  if old == 'assigned' and assignee ~= target then task_event('task_assigned', id, old, 'assigned') end
end
if side == 'front' then redis.call('LPUSH', KEYS[8], new_raw) else redis.call('RPUSH', KEYS[8], new_raw) end
return 1
"""

# A worker was handed a task_assign whose record names another assignee. KEYS[7..9] that assignee's
# inbox, urgent and processing lists. ARGV: id, the worker's agent, the entry readdressed to the assignee.
# Returns {code, assignee}: 'ours' the record names the worker's agent after all (or nobody), 'closed'
# finished or gone, 'held' the assignee already holds a delivery of the task, 'delivered' the entry was
# put at the front of the assignee's inbox.
LEAVE_WITH_ASSIGNEE = TASK_PRELUDE + r"""
local id, me, raw = ARGV[1], ARGV[2], ARGV[3]
local old = current_task_state(KEYS[1])
if old == nil or TERMINAL[old] then return {'closed', ''} end
local assignee = redis.call('HGET', KEYS[1], 'assigned_to') or ''
if assignee == '' or assignee == me then return {'ours', assignee} end
if old == 'pending' then return {'held', assignee} end
for i = 7, 9 do
  for _, entry in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
    if string.find(entry, id, 1, true) then return {'held', assignee} end
  end
end
redis.call('LPUSH', KEYS[7], raw)
return {'delivered', assignee}
"""


class LeftWith(str, enum.Enum):
    """What :meth:`HandoverStore.leave_with_assignee` did."""

    OURS = "ours"
    CLOSED = "closed"
    HELD = "held"
    DELIVERED = "delivered"


class HandoverStore(SubStore):
    _reassign = Lua(REASSIGN_ENTRY)
    async def reassign_entry(self, task_id: str, entry: InboxEntry, *, from_agent: str, to_agent: str) -> bool:
        """Move a task_assign ``entry`` of ``from_agent``'s mailbox to ``to_agent``'s inbox (placed by
        priority, readdressed, unknown fields kept) and, in the same step, assign its open task to
        ``to_agent``. ``False`` if the entry had gone meanwhile."""
        k = self._k
        side = "front" if entry.message and placement_for(entry.message) is Placement.FRONT else "back"
        from_list = k.urgent(from_agent) if entry.urgent else k.inbox(from_agent)
        return bool(await self._reassign(
            keys=task_script_keys(k, task_id, from_list, k.inbox(to_agent)),
            args=[task_id, to_agent, _now(), entry.raw, readdress_message(entry.raw, to_agent), side],
        ))

    _leave = Lua(LEAVE_WITH_ASSIGNEE)
    async def leave_with_assignee(self, task_id: str, agent_id: str, raw: str) -> tuple[LeftWith, str]:
        """The task_assign ``raw`` reached ``agent_id`` but the record names another assignee: make sure
        that assignee holds a delivery of it (``raw`` readdressed, at the front of its inbox). Returns
        what was done and the assignee the record names."""
        k = self._k
        named = ""
        for _ in range(_LEAVE_TRIES):
            # The script's keys name the assignee, so it is read first; the script judges again and
            # reports the assignee it saw: if the task moved in between, look again.
            assignee = await self._r.hget(k.task(task_id), "assigned_to") or ""
            code, named = await self._leave(
                keys=task_script_keys(k, task_id, k.inbox(assignee), k.urgent(assignee), k.processing(assignee)),
                args=[task_id, agent_id, readdress_message(raw, assignee)],
            )
            if named == assignee or code in (LeftWith.OURS.value, LeftWith.CLOSED.value):
                return LeftWith(code), named
        return LeftWith.HELD, named  # moving on as fast as we look: it is somebody's, not lost


def _now() -> str:
    return format_hash_time(utc_now())
