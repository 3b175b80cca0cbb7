"""A user's actions on one task (``POST /v1/tasks/{id}/cancel`` and ``/retry``), each one Lua step with
the task's indexes (:data:`~townhall.store.tasks.TASK_PRELUDE`) and the queue entries that announce it."""

from __future__ import annotations

import msgspec

from townhall.domain.tasks import TaskState
from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import StoreContext, SubStore
from townhall.store.tasks import TASK_PRELUDE, task_script_keys

# KEYS[7] backlog, KEYS[8] and KEYS[9] the assignee's inbox and urgent list ('' when none), KEYS[10] the
# assignee's hash ('' when none). ARGV: id, now, result, the assignee the caller read ('' none).
# An open task becomes cancelled; a queued one is withdrawn in the same step from the backlog and from
# the assignee's mailbox (its task_assign entries). A running one is left to its worker, which sees the
# state and stops the CLI. Returns {code, old state or ''}: 1 cancelled, 0 not open (or gone), 2 the
# assignee changed since the caller read it (read again and retry).
CANCEL = TASK_PRELUDE + r"""
local id, now, result, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = current_task_state(KEYS[1])
if old == nil or TERMINAL[old] then return {0, old or ''} end
if (redis.call('HGET', KEYS[1], 'assigned_to') or '') ~= expected then return {2, old} end
redis.call('LREM', KEYS[7], 0, id)
for i = 8, 9 do
  if KEYS[i] ~= '' then
    for _, entry in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
      local ok, m = pcall(cjson.decode, entry)
      if ok and type(m) == 'table' and m['type'] == 'task_assign' and m['task_id'] == id then
        redis.call('LREM', KEYS[i], 0, entry)
      end
    end
  end
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'result', result, 'completed_at', now, 'updated_at', now)
move(id, old, 'cancelled')
if KEYS[10] ~= '' and redis.call('HGET', KEYS[10], 'current_task') == id then
  redis.call('HDEL', KEYS[10], 'current_task')
end
return {1, old}
"""

# KEYS[7] backlog. ARGV: id, now. A failed or cancelled task is pending again, last in the backlog, with
# no assignee, no outcome and its runs uncounted. Returns {applied, old state or ''}.
RETRY = TASK_PRELUDE + r"""
local id, now = ARGV[1], ARGV[2]
local old = current_task_state(KEYS[1])
if old ~= 'failed' and old ~= 'cancelled' then return {0, old or ''} end
redis.call('HSET', KEYS[1], 'state', 'pending', 'updated_at', now)
redis.call('HDEL', KEYS[1], 'assigned_to', 'started_at', 'completed_at', 'result', 'attempts', 'last_error',
           'attempt_errors')
move(id, old, 'pending')
if redis.call('LPOS', KEYS[7], id) == false then redis.call('RPUSH', KEYS[7], id) end
return {1, old}
"""


class ActionResult(msgspec.Struct, frozen=True):
    """``applied``, and the state the task had (``None``: no record)."""

    applied: bool
    before: TaskState | None
    #: Cancel only: the assignee changed under the caller; read the record again.
    moved: bool = False


class TaskActionStore(SubStore):
    def __init__(self, ctx: StoreContext) -> None:
        super().__init__(ctx)
        self._cancel = self._r.register_script(CANCEL)
        self._retry = self._r.register_script(RETRY)

    async def cancel(self, task_id: str, result: str, *, assignee: str | None) -> ActionResult:
        """Cancel an open task, withdrawing it from the backlog and ``assignee``'s mailbox (the
        assignee the caller read; see ``CANCEL``)."""
        k = self._k
        mailbox = [k.inbox(assignee), k.urgent(assignee), k.agent(assignee)] if assignee else ["", "", ""]
        code, old = await self._cancel(
            keys=task_script_keys(k, task_id, k.backlog, *mailbox),
            args=[task_id, format_hash_time(utc_now()), result, assignee or ""],
        )
        return ActionResult(applied=int(code) == 1, before=TaskState.parse(old) if old else None,
                            moved=int(code) == 2)

    async def retry(self, task_id: str) -> ActionResult:
        """A failed or cancelled task back to ``pending``, last in the backlog, attempts reset."""
        applied, old = await self._retry(keys=task_script_keys(self._k, task_id, self._k.backlog),
                                         args=[task_id, format_hash_time(utc_now())])
        return ActionResult(applied=bool(applied), before=TaskState.parse(old) if old else None)
