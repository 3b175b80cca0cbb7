"""Task records (``tt:{town}:task:{id}`` hashes) with our state indexes and counters.

Every write that may change a task's state goes through one Lua script, so the open-state sets, the
per-state counts and the completed-total counter always move together with the record. The task
scripts (here, in :mod:`~townhall.store.backlog` and :mod:`~townhall.store.processing`) share one key
layout, :func:`task_script_keys`, and one prelude, :data:`TASK_PRELUDE`: KEYS[1] task hash, KEYS[2]
counts hash, KEYS[3] completed-total counter, KEYS[4..6] open-state index sets (pending, assigned,
running); extra keys follow, and the last key is the town event stream. Every state change that
``move`` makes is announced there in the same step (``docs/events.md``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import msgspec

from townhall.domain import is_uuid
from townhall.domain.messages import Message
from townhall.domain.tasks import OPEN_TASK_STATES, TERMINAL_TASK_STATES, Task, TaskState
from townhall.domain.timestamps import epoch_ms, format_hash_time, format_json_time, utc_now
from townhall.keys import TownKeys
from townhall.store.context import LUA_ALLOWED, Lua, SubStore, csv, lua_set, patch_values, write_args
from townhall.store.codec import split_fields, task_from_hash, task_to_hash
from townhall.store.history_lua import HISTORY_LUA
from townhall.store.json_codec import encode_message
from townhall.store.events import EVENT_LUA, TASK_EVENTS_LUA


def task_script_keys(keys: TownKeys, task_id: str, *extra: str) -> list[str]:
    """The fixed key layout of the task scripts; the town event stream is always the last key."""
    return [
        keys.task(task_id),
        keys.task_counts,
        keys.tasks_completed_total,
        *(keys.tasks_in_state(state.value) for state in OPEN_TASK_STATES),
        *extra,
        keys.events,
    ]


# Bookkeeping shared by all task scripts. `old == nil` means "no record before"; a record written by
# a tool that does not maintain our indexes is recognised by its id missing from the open-state set,
# in which case it was never counted and must not be decremented. States are read as TaskState.parse
# reads them. `move` also keeps the history indexes and the task id index (HISTORY_LUA); a script that
# deletes a record calls `history_forget` before the DEL, while the record still says which agent and
# tag sets hold it.
# `norm_task_state`: a state read as TaskState.parse reads it.
TASK_STATE_LUA = (
    f"local KNOWN = {lua_set(TaskState)}\n"
    + f"local TERMINAL = {lua_set(TERMINAL_TASK_STATES)}\n"
    + "local ALIASES = {"
    + ", ".join(f"{alias} = '{value}'" for alias, value in TaskState._aliases.items())
    + "}\n"
    + f"local FALLBACK = '{TaskState._fallback}'\n"
    + r"""
local function norm_task_state(raw)
  if not raw then return FALLBACK end
  local s = string.lower(string.match(raw, '^%s*(.-)%s*$'))
  s = ALIASES[s] or s
  if KNOWN[s] then return s end
  return FALLBACK
end
"""
)

TASK_PRELUDE = (
    "local IDX = {"
    + ", ".join(f"{state.value} = KEYS[{4 + i}]" for i, state in enumerate(OPEN_TASK_STATES))
    + "}\n"
    + TASK_STATE_LUA
    + LUA_ALLOWED
    + HISTORY_LUA
    + r"""
local function current_task_state(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  return norm_task_state(redis.call('HGET', key, 'state'))
end

-- `delta`: '1' or '-1'. Numbers go to redis.call as text ('1', not 1) in the scripts a request runs:
-- Redis formats a Lua number with snprintf on every call.
local function adjust(state, delta)
  local n = redis.call('HINCRBY', KEYS[2], state, delta)
  if n < 0 then redis.call('HSET', KEYS[2], state, '0') end
  -- Lets a reconcile tell that terminal counts moved while it was counting (store/reconcile.py).
  if TERMINAL[state] then redis.call('HINCRBY', KEYS[2], 'terminal_moves', '1') end
end

local function count_move(id, old, new)
  if old == new then
    if new and IDX[new] and redis.call('SADD', IDX[new], id) == 1 then adjust(new, '1') end
    return
  end
  if old then
    local counted = true
    if IDX[old] then counted = redis.call('SREM', IDX[old], id) == 1 end
    if counted then adjust(old, '-1') end
  end
  if new then
    adjust(new, '1')
    if IDX[new] then redis.call('SADD', IDX[new], id) end
    if new == 'completed' then redis.call('INCR', KEYS[3]) end
  end
end

local function move(id, old, new)
  count_move(id, old, new)
  if new then
    history_index(KEYS[1], id, new)
  else
    history_unindex(id)
  end
end
"""
)

# Every state change `move` makes is announced on the town event stream, the last key of every task
# script, in the same step (TASK_EVENTS_LUA wraps `move`; docs/events.md).
TASK_PRELUDE += EVENT_LUA + TASK_EVENTS_LUA

# ARGV: id, new_state ('' keeps it), allowed_from csv ('' = any), must_exist (1/0), count an attempt
#       (1/0), nset, field, value ×nset, fields to delete...
# Returns {applied, old_state or ''}.
TASK_WRITE = TASK_PRELUDE + r"""
local id, new, allow, must_exist, counted = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local old = current_task_state(KEYS[1])
if old == nil and must_exist == '1' then return {0, ''} end
if not allowed(allow, old or '') then return {0, old or ''} end
if new == '' then new = old end
local nset = tonumber(ARGV[6])
local pairs_ = {}
for i = 7, 6 + 2 * nset do pairs_[#pairs_ + 1] = ARGV[i] end
if new then pairs_[#pairs_ + 1] = 'state'; pairs_[#pairs_ + 1] = new end
if #pairs_ > 0 then redis.call('HSET', KEYS[1], unpack(pairs_)) end
if #ARGV >= 7 + 2 * nset then redis.call('HDEL', KEYS[1], unpack(ARGV, 7 + 2 * nset)) end
-- A run begun is counted with the state that says so: no reader sees it running on the old count.
if counted == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', '1') end
move(id, old, new)
return {1, old or ''}
"""

# A new task and the list entries that announce it, in one step (one round trip, never half done).
# KEYS[7..#KEYS-1]: lists to RPUSH to. ARGV: id, state, the length the last list is trimmed to after
# its push ('0': not trimmed; the wake tokens' cap), the history score (created_at in epoch ms), the
# event time (RFC 3339), the assignee ('' none), the tags (JSON), value per list ×(#KEYS-7), nset,
# field, value ×nset, fields to delete...
TASK_CREATE_PUSH = TASK_PRELUDE + r"""
local id, new = ARGV[1], ARGV[2]
local npush = #KEYS - 7
local at = 8 + npush
local nset = tonumber(ARGV[at])
local old = current_task_state(KEYS[1])
redis.call('HSET', KEYS[1], 'state', new, unpack(ARGV, at + 1, at + 2 * nset))
if old then
  -- Another writer's record was there: what this one leaves out is cleared, and it moves on from there.
  if #ARGV > at + 2 * nset then redis.call('HDEL', KEYS[1], unpack(ARGV, at + 1 + 2 * nset)) end
  move(id, old, new)
else
  -- move(id, nil, new), told what it would read back from the record (and Redis's clock) otherwise.
  count_move(id, nil, new)
  history_file(id, new, ARGV[4], nil, ARGV[6], ARGV[7])
  announce(id, nil, new, ARGV[6], ARGV[5])
end
for i = 1, npush do redis.call('RPUSH', KEYS[6 + i], ARGV[7 + i]) end
if ARGV[3] ~= '0' then redis.call('LTRIM', KEYS[6 + npush], '-' .. ARGV[3], '-1') end
return 1
"""

# ARGV: id. Returns 1 if a record was deleted.
TASK_DELETE = TASK_PRELUDE + r"""
local old = current_task_state(KEYS[1])
if old == nil then return 0 end
history_forget(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
move(ARGV[1], old, nil)
return 1
"""

# An id found in an open-state set whose record says otherwise was changed by another tool: move
# it (and its count) to where it belongs. ARGV: id, the state whose set it was found in.
TASK_REPAIR = TASK_PRELUDE + r"""
local id, believed = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', IDX[believed], id) == 0 then return 0 end
local actual = current_task_state(KEYS[1])
if actual == believed then return 0 end
redis.call('SREM', IDX[believed], id)
adjust(believed, '-1')
if actual then move(id, nil, actual, true) end
return 1
"""

# KEYS[7] agent hash ('' when no agent). Finish a task (completed/failed) together with its agent:
# clear the agent's current_task if it points at the task, and count a completion unless the task was
# already terminal. ARGV: id, new state, allowed_from csv ('' = any), now, result, count (1/0).
# Returns {applied, old_state or ''}.
TASK_FINISH = TASK_PRELUDE + r"""
local id, new, allow, now, result, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = current_task_state(KEYS[1])
if old == nil then return {0, ''} end
if not allowed(allow, old) then return {0, old} end
redis.call('HSET', KEYS[1], 'state', new, 'result', result, 'completed_at', now, 'updated_at', now)
move(id, old, new)
if KEYS[7] ~= '' and redis.call('EXISTS', KEYS[7]) == 1 then
  if redis.call('HGET', KEYS[7], 'current_task') == id then redis.call('HDEL', KEYS[7], 'current_task') end
  if count == '1' and not TERMINAL[old] then redis.call('HINCRBY', KEYS[7], 'tasks_completed', 1) end
end
return {1, old}
"""


class TaskPatch(msgspec.Struct, kw_only=True):
    """A partial task update. ``UNSET`` keeps a field; ``None`` removes an optional one."""

    description: str | msgspec.UnsetType = msgspec.UNSET
    assigned_to: str | None | msgspec.UnsetType = msgspec.UNSET
    started_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    completed_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    result: str | None | msgspec.UnsetType = msgspec.UNSET
    parent_id: str | None | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET


class TaskStore(SubStore):
    def _keys(self, task_id: str, *extra: str) -> list[str]:
        return task_script_keys(self._k, task_id, *extra)

    async def create(self, task: Task) -> Task:
        await self.save(task)
        return task

    _write = Lua(TASK_WRITE)
    async def save(self, task: Task) -> TaskState | None:
        """Write the whole record (clearing absent optionals) and move indexes/counters. Returns the
        previous state, or ``None`` if the task is new."""
        _, old = await self._ctx.durable(
            self._write, self._keys(task.id), [task.id, task.state.value, "", "0", "0", *write_args(task_to_hash(task))],
        )
        return TaskState.parse(old) if old else None

    async def transition(
        self,
        task_id: str,
        to: TaskState | None,
        patch: TaskPatch | None = None,
        *,
        allowed_from: Iterable[TaskState] | None = None,
        count_attempt: bool = False,
    ) -> TaskState | None:
        """Atomic partial update of an existing task, optionally a state change (``to``), applied only
        if the current state is in ``allowed_from`` (any if ``None``). ``updated_at`` is set to now;
        ``count_attempt`` adds one to ``attempts`` in the same step (a run begun). Returns the previous
        state, or ``None`` when the task is missing or the state not allowed."""
        values = patch_values(patch) if patch is not None else {}
        values["updated_at"] = utc_now()
        applied, old = await self._write(
            keys=self._keys(task_id),
            args=[task_id, to.value if to else "", csv(allowed_from), "1", "1" if count_attempt else "0",
                  *write_args(split_fields(values))],
        )
        return TaskState.parse(old) if applied else None

    _finish = Lua(TASK_FINISH)
    async def finish(
        self,
        task_id: str,
        to: TaskState,
        result: str,
        *,
        agent_id: str | None,
        allowed_from: Iterable[TaskState] | None = None,
        count_completion: bool = True,
    ) -> TaskState | None:
        """Make a task terminal (``result``, ``completed_at``) and, in the same step, clear
        ``agent_id``'s ``current_task`` if it points at the task and (``count_completion``) add one to
        its ``tasks_completed`` unless the task was already terminal. Returns the previous state, or
        ``None`` when the task is missing or its state not allowed."""
        applied, old = await self._ctx.durable(
            self._finish,
            self._keys(task_id, self._k.agent(agent_id) if agent_id else ""),
            [task_id, to.value, csv(allowed_from), format_hash_time(utc_now()), result, "1" if count_completion else "0"],
        )
        return TaskState.parse(old) if applied else None

    async def create_with_message(self, task: Task, message: Message) -> None:
        """Write a new task and append its ``task_assign`` message to the recipient's inbox in one
        transaction, so an assignment is never half done."""
        await self.create_and_push(task, [(self._k.inbox(message.to), encode_message(message))])

    _create_push = Lua(TASK_CREATE_PUSH)
    async def create_and_push(self, task: Task, pushes: Sequence[tuple[str, str]], *,
                              wake: tuple[str, int] | None = None) -> None:
        """Write a new task and RPUSH each ``(list key, value)`` in one atomic step and round trip;
        ``wake`` (a token list and its cap, :attr:`ProcessingStore.wake_target`) gets a token in the
        same step. (A worker woken before the write has reached the replicas the town waits for sees
        the task on the primary; if the primary is lost first, the worker's claim is lost with it.)"""
        pushes = [*pushes, (wake[0], "1")] if wake is not None else pushes
        record = task_to_hash(task)
        await self._ctx.durable(
            self._create_push,
            self._keys(task.id, *(key for key, _ in pushes)),
            [task.id, task.state.value, wake[1] if wake is not None else 0, epoch_ms(task.created_at),
             format_json_time(task.updated_at), record.set.get("assigned_to", ""), record.set.get("tags", "[]"),
             *(value for _, value in pushes), *write_args(record)],
        )

    async def get(self, task_id: str) -> Task | None:
        return await self._ctx.hash_record(self._k.task(task_id), task_from_hash, f"task {task_id}")

    async def state_of(self, task_id: str) -> TaskState | None:
        """The state of a task as ``get`` would read it (``None``: no record, or no state field); one
        ``HGET``."""
        raw = await self._r.hget(self._k.task(task_id), "state")
        return TaskState.parse(raw) if raw is not None else None

    async def get_many(self, task_ids: Sequence[str]) -> list[Task | None]:
        """Records in the order asked, ``None`` where missing or unreadable; one round trip."""
        return await self._ctx.hash_records([self._k.task(t) for t in task_ids], task_from_hash)

    async def open_descriptions(self, task_ids: Sequence[str]) -> list[str | None]:
        """The description of each task asked for that has a record and is not finished, ``None`` for
        the others, in the order asked; one round trip reading three fields of each, not its record."""
        replies = await self._ctx.read_each("hmget", [self._k.task(t) for t in task_ids], "id", "state", "description")
        # As task_from_hash reads a record: one without an id is none.
        return [None if not reply or not reply[0] or TaskState.parse(reply[1]).is_terminal else reply[2] or ""
                for reply in replies]

    _delete = Lua(TASK_DELETE)
    async def delete(self, task_id: str) -> bool:
        return bool(await self._delete(keys=self._keys(task_id), args=[task_id]))

    async def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Ids of existing tasks that start with ``prefix`` (lowercase), at most ``limit``, sorted; the
        cost depends on the matches, not on the number of tasks. Entries whose record another tool
        deleted are dropped on the way; an entry that is not a UUID (a record key another tool named) is
        never returned, so a resolved id is always safe to build names from."""
        found = [t for t in await self._r.zrangebylex(self._k.task_ids, f"[{prefix}", f"[{prefix}\xff",
                                                       start=0, num=limit + 8) if is_uuid(t)]
        if not found:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in found:
                pipe.exists(self._k.task(task_id))
            exists = await pipe.execute()
        gone = [t for t, e in zip(found, exists) if not e]
        if gone:
            await self._r.zrem(self._k.task_ids, *gone)
        return [t for t, e in zip(found, exists) if e][:limit]

    async def ids_in_state(self, state: TaskState) -> set[str]:
        """Ids indexed under an open state (pending/assigned/running). Terminal states are not indexed:
        they only ever grow, and nothing may cost time proportional to them."""
        if state not in OPEN_TASK_STATES:
            raise ValueError(f"terminal state {state.value} is not indexed")
        return set(await self._r.smembers(self._k.tasks_in_state(state.value)))

    _repair = Lua(TASK_REPAIR)
    async def in_state(self, state: TaskState) -> list[Task]:
        """Records currently in an open state. Index entries that another tool made stale (it changed
        or deleted the record without maintaining our index) are repaired on the way."""
        ids = sorted(await self.ids_in_state(state))
        tasks = await self.get_many(ids)
        found: list[Task] = []
        for task_id, task in zip(ids, tasks):
            if task is not None and task.state is state:
                found.append(task)
            else:
                await self._repair(keys=self._keys(task_id), args=[task_id, state.value])
        return found

    async def open_tasks(self) -> list[Task]:
        """All pending, assigned and running tasks (what orphan detection and scaling look at)."""
        result: list[Task] = []
        for state in OPEN_TASK_STATES:
            result += await self.in_state(state)
        return result

    async def counts(self) -> dict[TaskState, int]:
        raw = await self._r.hgetall(self._k.task_counts)
        counts = {state: 0 for state in TaskState}
        for name, value in raw.items():
            try:
                counts[TaskState(name)] = max(int(value), 0)
            except ValueError:
                continue
        return counts

    async def completed_total(self) -> int:
        """Tasks that ever became completed; a true counter that deletes never lower."""
        value = await self._r.get(self._k.tasks_completed_total)
        return int(value or 0)
