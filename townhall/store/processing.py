"""A worker's processing list ``tt:{town}:processing:{id}``: what it took and has not finished.

Every way work reaches a worker moves it here atomically (``LMOVE``, ``BLMOVE`` or a Lua script), and
it leaves only when the task finished or was handed back; so a worker killed at any instant loses
nothing: its processing list is put back (worker restart, ``recover``, the upkeep sweep). Entries are
message JSON exactly as in the inbox, so putting them back is a plain move.
"""

from __future__ import annotations

import enum
from typing import Callable

import msgspec
import redis.asyncio as aioredis

from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.backlog import BacklogStore
from townhall.store.context import Lua, StoreContext, SubStore
from townhall.store.tasks import TASK_PRELUDE, task_script_keys

#: Wake tokens kept at most; one is enough to wake a worker, the cap only bounds an unwatched list.
WAKE_CAP = 1000


class Source(str, enum.Enum):
    """Where an entry came from, so that handing it back returns it to the same place."""

    URGENT = "urgent"
    INBOX = "inbox"
    SHARED = "shared"
    LEFTOVER = "leftover"  # found in the processing list of a previous life of this worker


class Taken(msgspec.Struct, frozen=True):
    source: Source
    raw: str


# KEYS[1] urgent, KEYS[2] inbox, KEYS[3] processing. Urgent mail is LPUSHed by senders, so its oldest
# entry is on the right (taking from the left, as upstream does, is LIFO: GAP 22). The regular inbox
# keeps high priority at the front and normal mail in arrival order, so it is taken from the left.
TAKE_MAILBOX = r"""
local v = redis.call('LMOVE', KEYS[1], KEYS[3], 'RIGHT', 'RIGHT')
if v then return {'urgent', v} end
v = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT')
if v then return {'inbox', v} end
return false
"""

# KEYS[1] processing, KEYS[2] destination. ARGV: entry, 'left'|'right'. Moves one entry back.
GIVE_BACK = r"""
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[2] == 'right' then redis.call('RPUSH', KEYS[2], ARGV[1]) else redis.call('LPUSH', KEYS[2], ARGV[1]) end
return 1
"""

# Streams: take a docket entry's task for an agent. KEYS[7] backlog. ARGV: id, agent, now, previous
# owner ('' if the entry is fresh). The backlog catalogue loses the id and the task becomes assigned to
# the agent in one step. An entry whose task left the backlog some other way (claim, assign-all,
# delete) is stale — unless it is a redelivery of this agent's own work or of a dead owner's.
# Returns 1 take, 0 stale.
SHARED_TAKE = TASK_PRELUDE + r"""
local id, agent, now, previous = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local from_backlog = redis.call('LREM', KEYS[7], 1, id) == 1
local old = current_task_state(KEYS[1])
if old == nil or TERMINAL[old] then return 0 end
local assignee = redis.call('HGET', KEYS[1], 'assigned_to') or ''
if not from_backlog then
  if assignee ~= agent and (previous == '' or assignee ~= previous) then return 0 end
end
redis.call('HSET', KEYS[1], 'state', 'assigned', 'assigned_to', agent, 'updated_at', now)
redis.call('HDEL', KEYS[1], 'started_at')
move(id, old, 'assigned')
if old == 'assigned' and assignee ~= agent then task_event('task_assigned', id, old, 'assigned') end
return 1
"""

# Shared work handed back: KEYS[7] backlog, KEYS[8] processing ('' for streams). ARGV: id, entry ('' if
# none), now. The task returns to pending and to the front of the backlog (it was first in line). An
# entry that is no longer in the processing list was put back already (by its worker or a sweep).
SHARED_RETURN = TASK_PRELUDE + r"""
local id, entry, now = ARGV[1], ARGV[2], ARGV[3]
if KEYS[8] ~= '' and entry ~= '' and redis.call('LREM', KEYS[8], 1, entry) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old == nil or TERMINAL[old] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'updated_at', now)
redis.call('HDEL', KEYS[1], 'assigned_to', 'started_at')
move(id, old, 'pending')
if redis.call('LPOS', KEYS[7], id) == false then redis.call('LPUSH', KEYS[7], id) end
return 1
"""

# KEYS[1] processing list, KEYS[2] inbox. Moves everything back to the inbox front, order kept.
PROCESSING_RESTORE = r"""
local n = 0
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do n = n + 1 end
return n
"""


class ProcessingStore(SubStore):
    def __init__(self, ctx: StoreContext, backlog: BacklogStore) -> None:
        super().__init__(ctx)
        self._backlog = backlog

    async def entries(self, agent_id: str) -> list[str]:
        return await self._r.lrange(self._k.processing(agent_id), 0, -1)

    _take_mailbox = Lua(TAKE_MAILBOX)
    async def take_mailbox(self, agent_id: str) -> Taken | None:
        """Oldest urgent message, else the inbox head, moved into the processing list."""
        k = self._k
        reply = await self._take_mailbox(keys=[k.urgent(agent_id), k.inbox(agent_id), k.processing(agent_id)])
        if not reply:
            return None
        return Taken(source=Source(reply[0]), raw=reply[1])

    async def wait_mailbox(self, client: aioredis.Redis, agent_id: str, *, urgent: bool,
                           timeout: float) -> Taken | None:
        """Block (on ``client``, whose socket timeout must exceed ``timeout``) until the urgent or the
        regular inbox has an entry, and move it into the processing list."""
        k = self._k
        if urgent:
            raw = await client.blmove(k.urgent(agent_id), k.processing(agent_id), timeout, "RIGHT", "RIGHT")
        else:
            raw = await client.blmove(k.inbox(agent_id), k.processing(agent_id), timeout, "LEFT", "RIGHT")
        if raw is None:
            return None
        return Taken(source=Source.URGENT if urgent else Source.INBOX, raw=raw)

    async def take_backlog(self, agent_id: str, message_for: Callable[[str], str]) -> tuple[str, str] | None:
        """Lists backend: the first backlog task, assigned to ``agent_id`` with its task_assign message
        placed in the processing list, in one atomic step (the backlog-claim script). Ids without a
        record are dropped, as assign-all does. Returns ``(task_id, message JSON)``."""
        return await self._backlog.claim_next(agent_id, self._k.processing(agent_id), message_for)

    async def finish(self, agent_id: str, raw: str) -> bool:
        """The entry's work is over (done, failed or skipped): drop it from the processing list."""
        return bool(await self._r.lrem(self._k.processing(agent_id), 1, raw))

    _give_back = Lua(GIVE_BACK)
    async def give_back(self, agent_id: str, raw: str, source: Source) -> bool:
        """Return an unfinished mailbox entry where it will be taken next (urgent or inbox)."""
        k = self._k
        if source is Source.URGENT:
            dest, side = k.urgent(agent_id), "right"
        else:
            dest, side = k.inbox(agent_id), "left"
        return bool(await self._give_back(keys=[k.processing(agent_id), dest], args=[raw, side]))

    @property
    def wake_target(self) -> tuple[str, int]:
        """The shared wake list and its cap, for writes that wake workers in their own round trip."""
        return self._k.wake_shared, WAKE_CAP

    async def wake_shared(self) -> None:
        """Lists backend: tell blocked workers that shared work arrived (a bounded token list)."""
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.rpush(self._k.wake_shared, "1")
            pipe.ltrim(self._k.wake_shared, -WAKE_CAP, -1)
            await pipe.execute()

    async def held_by_dead_workers(self, agent_ids: list[str]) -> list[str]:
        """The agents whose processing list holds work while their worker's liveness key lapsed."""
        if not agent_ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.exists(self._k.worker_alive(agent_id))
                pipe.llen(self._k.processing(agent_id))
            replies = await pipe.execute()
        return [a for i, a in enumerate(agent_ids) if replies[2 * i + 1] and not replies[2 * i]]

    _restore = Lua(PROCESSING_RESTORE)
    async def restore(self, agent_id: str) -> int:
        """Everything a (dead) worker held goes back to the front of its inbox, order kept."""
        k = self._k
        return int(await self._restore(keys=[k.processing(agent_id), k.inbox(agent_id)], args=[]))

    async def restore_one(self, agent_id: str, raw: str) -> bool:
        """One entry a (dead) worker held back to the front of its inbox (``False``: not held)."""
        k = self._k
        return bool(await self._give_back(keys=[k.processing(agent_id), k.inbox(agent_id)], args=[raw, "left"]))

    _shared_take = Lua(SHARED_TAKE)
    async def shared_take(self, task_id: str, agent_id: str, previous_owner: str | None) -> bool:
        """Streams: accept a docket entry's task (see ``SHARED_TAKE``); ``False`` if it is stale."""
        return bool(await self._shared_take(
            keys=task_script_keys(self._k, task_id, self._k.backlog),
            args=[task_id, agent_id, _now(), previous_owner or ""],
        ))

    _shared_return = Lua(SHARED_RETURN)
    async def shared_return(self, task_id: str, agent_id: str | None = None, raw: str = "") -> bool:
        """Shared work handed back unfinished: task pending again and first in the backlog (and out of
        ``agent_id``'s processing list if given). ``False`` if the task is finished or gone."""
        processing = self._k.processing(agent_id) if agent_id else ""
        return bool(await self._shared_return(
            keys=task_script_keys(self._k, task_id, self._k.backlog, processing),
            args=[task_id, raw, _now()],
        ))


def _now() -> str:
    return format_hash_time(utc_now())
