"""The runs of a task: how many were begun, why they failed, and the task's own time limit.

Fields townhall adds to the task hash (``attempts``, ``last_error``, ``attempt_errors``, ``timeout_secs``;
``docs/redis-layout.md``); upstream readers ignore extra hash fields. A failed run of shared work is
re-queued or failed for good in one Lua step with the task's indexes (:data:`TASK_PRELUDE`).
"""

from __future__ import annotations

import enum

import msgspec

from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import Lua, SubStore
from townhall.store.tasks import TASK_PRELUDE, task_script_keys

# KEYS[7] agent hash ('' when none), KEYS[8] the shared queue list, KEYS[9] the taker's processing list
# ('' when none). ARGV: id, now, error (output tail included), this attempt's reason line, max attempts,
# processing entry. The reason joins `attempt_errors` (a JSON array), the error is `last_error`, the
# agent's current_task is cleared if it points here. Below `max attempts` runs (the `attempts` field) the
# task is pending again at the back of the queue, else failed with every attempt's reason.
# Returns {outcome, attempts}: 0 finished or gone meanwhile, 1 re-queued, 2 failed.
ATTEMPT_FAILED = TASK_PRELUDE + r"""
local id, now, err, reason, max, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
if KEYS[9] ~= '' and entry ~= '' then redis.call('LREM', KEYS[9], 1, entry) end
local old = current_task_state(KEYS[1])
if old == nil or TERMINAL[old] then return {0, 0} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '') or 0
local reasons = {}
local ok, decoded = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'attempt_errors') or '[]')
if ok and type(decoded) == 'table' then reasons = decoded end
reasons[#reasons + 1] = reason
redis.call('HSET', KEYS[1], 'last_error', err, 'attempt_errors', cjson.encode(reasons), 'updated_at', now)
if KEYS[7] ~= '' and redis.call('HGET', KEYS[7], 'current_task') == id then
  redis.call('HDEL', KEYS[7], 'current_task')
end
if attempts >= max then
  local result = 'failed after ' .. attempts .. ' attempt(s):\n' .. table.concat(reasons, '\n') .. '\n\n' .. err
  redis.call('HSET', KEYS[1], 'state', 'failed', 'result', result, 'completed_at', now)
  move(id, old, 'failed')
  return {2, attempts}
end
redis.call('HSET', KEYS[1], 'state', 'pending')
redis.call('HDEL', KEYS[1], 'assigned_to', 'started_at')
move(id, old, 'pending')
if redis.call('LPOS', KEYS[8], id) == false then redis.call('RPUSH', KEYS[8], id) end
return {1, attempts}
"""

# KEYS[1] task hash. ARGV: delta. Takes back an uncounted run (-1, never below 0) or adds runs;
# never creates a record. Returns the new count.
COUNT_ATTEMPT = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[1])
if n < 0 then redis.call('HSET', KEYS[1], 'attempts', 0); n = 0 end
return n
"""


class AttemptOutcome(enum.Enum):
    """What :meth:`AttemptStore.failed` did."""

    GONE = 0
    REQUEUED = 1
    FAILED = 2


class RunLimits(msgspec.Struct, frozen=True):
    """Runs counted so far and the task's own time limit (``None``: the configured default)."""

    attempts: int = 0
    timeout_secs: int | None = None


class AttemptStore(SubStore):
    _count = Lua(COUNT_ATTEMPT)
    async def count(self, task_id: str, delta: int) -> int:
        """``attempts`` + ``delta`` (-1: a run handed back uncounted; a run begun is counted by the start
        that makes its task running, ``TaskStore.transition(count_attempt=True)``); the new count."""
        return int(await self._count(keys=[self._k.task(task_id)], args=[delta]))

    async def limits(self, task_id: str) -> RunLimits:
        attempts, timeout = await self._r.hmget(self._k.task(task_id), ["attempts", "timeout_secs"])
        return RunLimits(attempts=_natural(attempts) or 0, timeout_secs=_natural(timeout))

    _failed = Lua(ATTEMPT_FAILED)
    async def failed(self, task_id: str, error: str, reason: str, *, agent_id: str, max_attempts: int,
                     processing: str = "", entry: str = "") -> tuple[AttemptOutcome, int]:
        """Record a failed run of shared work (``ATTEMPT_FAILED``): re-queued on the backlog or failed
        for good, ``entry`` removed from the ``processing`` list in the same step. Returns the outcome
        and the runs counted."""
        outcome, attempts = await self._failed(
            keys=task_script_keys(self._k, task_id, self._k.agent(agent_id), self._k.backlog, processing),
            args=[task_id, format_hash_time(utc_now()), error, reason, max_attempts, entry],
        )
        return AttemptOutcome(int(outcome)), int(attempts)


def _natural(raw: str | None) -> int | None:
    try:
        value = int(raw) if raw else None
    except ValueError:
        return None
    return value if value is None or value >= 0 else None
