"""Town event streams (reference §3.6): XADD with fields ``event_type`` and ``data`` (JSON).

Townhall appends its own events (task, agent, message, scaling changes) to the town stream
``tt:{town}:events`` in the same Lua step as the change they report (:data:`EVENT_LUA`), so a change
and its event are never seen apart. Entries written by other tools (the original ``tt``, mission
dispatchers) are read leniently: whatever their ``data`` holds, an entry becomes an
:class:`EventRecord`.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from townhall.domain.events import EventRecord, TownEvent
from townhall.store.context import EVENT_RETENTION_MARK, Lua, SubStore

AGENT_STREAM_MAXLEN = 100
MISSION_STREAM_MAXLEN = 500
#: A stream entry id as ``Last-Event-ID`` may give it (``ms`` alone means ``ms-0``).
STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")

# Appending an event from a script: `emit_event(stream, event, at)` sets the timestamp (`at` when the
# caller knows the time of the change, else Redis TIME, as RFC 3339 UTC like msgspec writes it) and
# XADDs with the town's retention. Lua 5.1 has no date
# formatting inside Redis, hence the civil-from-days arithmetic (H. Hinnant's algorithm).
EVENT_LUA = (
    EVENT_RETENTION_MARK
    + r"""
local function iso_now()
  local t = redis.call('TIME')
  local secs, micros = tonumber(t[1]), tonumber(t[2])
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', y, m, d, math.floor(rem / 3600),
                       math.floor((rem % 3600) / 60), rem % 60, micros)
end

local function emit_event(stream, event, at)
  event.timestamp = at or iso_now()
  redis.call('XADD', stream, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event_type', event.event_type,
             'data', cjson.encode(event))
end
"""
)

# Appended to the task scripts' prelude (after `move`, `TERMINAL`): the prelude's `move` is wrapped so that
# every state change is announced. The town stream is the last key of every task script. `quiet`: an
# index repair, not a change of the record.
TASK_EVENTS_LUA = r"""
local EVENTS = KEYS[#KEYS]
local TASK_EVENT = {pending = 'task_requeued', assigned = 'task_assigned', running = 'task_started',
                    completed = 'task_completed', failed = 'task_failed', cancelled = 'task_cancelled'}

-- `agent`: the task's assignee ('' none) when the caller knows it, else read from the record; `at`: the
-- time of the change when the caller knows it (emit_event).
local function task_event(kind, id, old, new, agent, at)
  local event = {event_type = kind, task_id = id, old_state = old, new_state = new,
                 message = string.format('task %s: %s -> %s', id, old or 'new', new or 'deleted')}
  if new then
    if agent == nil then agent = redis.call('HGET', KEYS[1], 'assigned_to') end
    if agent and agent ~= '' then event.agent_id = agent end
  end
  emit_event(EVENTS, event, at)
end

-- What a state change is called: a new record is created (and, made assigned, also assigned), a
-- finished one made open again is retried, a deleted one is deleted.
local function announce(id, old, new, agent, at)
  if old == nil then
    task_event('task_created', id, nil, new, agent, at)
    if new == 'assigned' then task_event('task_assigned', id, nil, new, agent, at) end
  elseif new == nil then
    task_event('task_deleted', id, old, nil)
  elseif TERMINAL[old] and not TERMINAL[new] then
    task_event('task_retried', id, old, new)
  else
    task_event(TASK_EVENT[new] or 'task_updated', id, old, new)
  end
end

local unannounced_move = move
local function move(id, old, new, quiet)
  if old ~= new and not quiet then announce(id, old, new) end
  unannounced_move(id, old, new)
end
"""

# KEYS[1] the last recommendation emitted, KEYS[2] the town stream. ARGV: recommendation, message.
# Emits only when the recommendation differs from the last one emitted (by any townhall replica).
SCALING_CHANGED = EVENT_LUA + r"""
local old = redis.call('GET', KEYS[1])
if old == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
local event = {event_type = 'scaling_recommendation_changed', new_state = ARGV[1], message = ARGV[2]}
if old then event.old_state = old end
emit_event(KEYS[2], event)
return 1
"""

def town_event_fields(event: TownEvent) -> dict[str, str]:
    """The fields of a stream entry for ``event``, as the original writes them."""
    return {"event_type": event.event_type, "data": msgspec.json.encode(event).decode()}


_RECORD_FIELDS = tuple(f for f in EventRecord.__struct_fields__ if f not in ("id", "event_type"))


def event_from_entry(entry_id: str, fields: dict[str, str]) -> EventRecord:
    """One stream entry as an event, however it was written: ``data`` that is not a JSON object, or
    fields of other types, are left out rather than refused (other tools write this stream too)."""
    data: Any = None
    raw = fields.get("data")
    if raw:
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            data = None
    if not isinstance(data, dict):
        data = {"message": raw} if raw else {}
    kind = data.get("event_type")
    if not isinstance(kind, str) or not kind:
        kind = fields.get("event_type") or "unknown"
    values = {name: data[name] for name in _RECORD_FIELDS if isinstance(data.get(name), str)}
    return EventRecord(id=entry_id, event_type=kind, **values)


class EventStore(SubStore):
    _scaling_changed = Lua(SCALING_CHANGED)

    async def emit(self, event: TownEvent) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            self.queue(pipe, event)
            await pipe.execute()

    def queue(self, pipe: Pipeline, event: TownEvent) -> None:
        """Add the XADDs for ``event`` to a pipeline the caller executes (to join a transaction): the
        town stream, and as the original does, the streams of the agents and the mission it names."""
        fields = town_event_fields(event)
        pipe.xadd(self._k.events, fields, maxlen=self._ctx.event_retention, approximate=True)
        for agent_id in {event.agent_id, event.parent_agent_id, event.child_agent_id} - {None}:
            pipe.xadd(self._k.agent_events(agent_id), fields, maxlen=AGENT_STREAM_MAXLEN, approximate=True)
        if event.mission_id:
            pipe.xadd(
                self._k.mission_events_stream(event.mission_id),
                fields,
                maxlen=MISSION_STREAM_MAXLEN,
                approximate=True,
            )

    async def note_recommendation(self, recommendation: str, message: str) -> bool:
        """Emit ``scaling_recommendation_changed`` if ``recommendation`` differs from the last one
        emitted; ``True`` if it did."""
        return bool(await self._scaling_changed(keys=[self._k.last_recommendation, self._k.events],
                                                args=[recommendation, message]))

    # ---- reading -------------------------------------------------------------------------------
    async def last_id(self) -> str:
        """The id of the newest entry (``0-0`` for an empty or missing stream): where a reader that
        wants only what comes next starts."""
        newest = await self._r.xrevrange(self._k.events, count=1)
        return newest[0][0] if newest else "0-0"

    async def after(self, entry_id: str, count: int) -> list[EventRecord]:
        """Up to ``count`` entries strictly after ``entry_id``, oldest first."""
        entries = await self._r.xrange(self._k.events, min=f"({entry_id}", count=count)
        return [event_from_entry(i, f) for i, f in entries]

    async def before(self, entry_id: str | None, count: int) -> list[EventRecord]:
        """Up to ``count`` entries strictly before ``entry_id`` (``None``: the newest), oldest first."""
        entries = await self._r.xrevrange(self._k.events, max=f"({entry_id}" if entry_id else "+", count=count)
        return [event_from_entry(i, f) for i, f in reversed(entries)]

    async def wait_after(self, client: aioredis.Redis, entry_id: str, block_ms: int,
                         count: int) -> Sequence[EventRecord]:
        """Entries after ``entry_id``, waiting up to ``block_ms`` for one (``XREAD BLOCK`` on
        ``client``, which must have no socket timeout shorter than the wait)."""
        replies = await client.xread({self._k.events: entry_id}, count=count, block=block_ms)
        if not replies:
            return []
        _, entries = replies[0]
        return [event_from_entry(i, f) for i, f in entries]
