"""Reading the task history: sorted sets of task ids scored by ``created_at`` (``TownKeys.history*``).

The sets are written by the task scripts in the same step as every state change
(:mod:`townhall.store.history_lua`); here they are read newest first from a position, and repaired
where a record changed or vanished behind our back (another tool, an expired key). A page costs the
entries it reads, never the length of the history.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import msgspec

from townhall.domain.tasks import Task, TaskState
from townhall.store.context import StoreContext, SubStore
from townhall.store.history_lua import HISTORY_LUA
from townhall.store.tasks import TASK_STATE_LUA, TaskStore

#: Task ids (re)indexed per script call by reconcile and repairs: bounded, so Redis is never held long.
REINDEX_BATCH = 500

# KEYS[1] the history set, KEYS[2] the counts hash (names the history keys), KEYS[3..] task hashes.
# ARGV: their ids. Each task that exists is indexed under its current state; a missing one (or a key of
# another type) leaves the whole history, the state sets and the task id index. Returns the number indexed.
HISTORY_REINDEX = TASK_STATE_LUA + HISTORY_LUA + r"""
local n = 0
for i, id in ipairs(ARGV) do
  local key = KEYS[2 + i]
  local head = redis.pcall('HMGET', key, 'id', 'state')
  if type(head) == 'table' and head[1] then
    history_index(key, id, norm_task_state(head[2]))
    n = n + 1
  else
    history_unindex(id)
  end
end
return n
"""


class Position(msgspec.Struct, frozen=True, array_like=True, order=True):
    """Where a task sits in the history: its score (``created_at`` in epoch ms) and its id. Newest
    first means descending by both (Redis orders equal scores by member)."""

    score: int
    task_id: str


class HistoryStore(SubStore):
    def __init__(self, ctx: StoreContext, tasks: TaskStore) -> None:
        super().__init__(ctx)
        self._tasks = tasks
        self._reindex = self._r.register_script(HISTORY_REINDEX)

    def state_keys(self, states: Iterable[TaskState]) -> list[str]:
        return [self._k.history_state(s.value) for s in states]

    async def sizes(self, keys: Sequence[str]) -> list[int]:
        """``ZCARD`` of each key, one round trip (what a query picks its candidate set by)."""
        async with self._r.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zcard(key)
            return [int(n) for n in await pipe.execute()]

    async def after(self, keys: Sequence[str], position: Position | None, count: int,
                    min_score: int | None = None) -> list[Position]:
        """Up to ``count`` positions older than ``position`` (all if ``None``) and not older than
        ``min_score``, newest first, from the union of ``keys`` (an id in several counts once)."""
        merged: dict[str, Position] = {}
        for key in keys:
            for found in await self._after_in(key, position, count, min_score):
                merged.setdefault(found.task_id, found)
        return sorted(merged.values(), reverse=True)[:count]

    async def _after_in(self, key: str, position: Position | None, count: int,
                        min_score: int | None) -> list[Position]:
        top = "+inf" if position is None else str(position.score)
        bottom = "-inf" if min_score is None else str(min_score)
        found: list[Position] = []
        offset = 0
        while True:
            # The top bound is inclusive: ids sharing the position's score and sorting below it come
            # next. Those sorting above it were read already and are skipped (a tie costs its size).
            want = count - len(found) + 1
            rows = await self._r.zrange(key, top, bottom, desc=True, byscore=True, offset=offset, num=want,
                                        withscores=True)
            for member, score in rows:
                here = Position(int(score), member)
                if position is None or here < position:
                    found.append(here)
            if len(found) >= count or len(rows) < want:
                return found[:count]
            offset += len(rows)

    async def records(self, positions: Sequence[Position]) -> list[Task | None]:
        return await self._tasks.get_many([p.task_id for p in positions])

    async def reindex(self, task_ids: Sequence[str]) -> int:
        """Index each task under the state its record says (or drop it from the history and the
        state sets if the record is gone): reconcile, and repairs of entries found stale."""
        indexed = 0
        for start in range(0, len(task_ids), REINDEX_BATCH):
            chunk = list(task_ids[start : start + REINDEX_BATCH])
            indexed += int(await self._reindex(
                keys=[self._k.history, self._k.task_counts, *(self._k.task(t) for t in chunk)], args=chunk))
        return indexed

    async def drop(self, key: str, task_ids: Sequence[str]) -> None:
        """Remove ids whose record is gone from a slice the scripts could not clean (agent, tag)."""
        if task_ids:
            await self._r.zrem(key, *task_ids)

