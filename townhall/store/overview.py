"""Listings answered in one round trip: every agent with what ``status`` shows of it, and the backlog
with its task records. Each is one Lua script, where a client would chain dependent calls (the index,
then the records, then what the records point at); Redis runs it while other clients wait, about a
millisecond per thousand agents.

The scripts build record keys from prefixes :class:`townhall.keys.TownKeys` gives them (``agent("")``
and so on), so key names still come from one place. They read keys they were not given in ``KEYS``,
which a single Redis (townhall's only topology) allows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import msgspec

from townhall.domain import Agent, AgentState, SpawnMode, Task, TaskState
from townhall.domain.ids import is_uuid
from townhall.store.codec import RememberingDecoder, agent_from_hash, task_from_hash, task_tags
from townhall.store.context import Lua, SubStore
from townhall.store.messages import PEEK_LIMIT, InboxEntry, InboxLengths, inbox_entry

#: How many activity lines a deep listing shows per agent (newest first).
ACTIVITY_LINES = 5

# Reads of keys other tools may have written with another type (WRONGTYPE): such a list reads as
# empty (length 0), such a record as unreadable (false). Shared by the scripts below.
TOLERANT_READS = r"""
local function len(key)
  local n = redis.pcall('LLEN', key)
  if type(n) == 'number' then return n end
  return 0
end
local function hash(key)
  local h = redis.pcall('HGETALL', key)
  if type(h) == 'table' and not h.err then return h end
  return false
end
local function range(key, n)
  local got = redis.pcall('LRANGE', key, 0, n - 1)
  if type(got) == 'table' and not got.err then return got end
  return {}
end
"""

# KEYS[1] agent index set. ARGV[1] the agent key prefix. Returns two values per agent: id and record (a
# flat field/value list; empty if unreadable). An index entry whose record is gone is removed from the
# index here, so the listing and the index agree afterwards.
AGENT_RECORDS = TOLERANT_READS + r"""
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = hash(ARGV[1] .. id)
  if record and #record == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    out[#out + 1] = id
    out[#out + 1] = record or {}
  end
end
return out
"""


# KEYS[1] agent index set. ARGV: prefixes of agent, inbox, urgent, task and activity keys; '1' for the
# mailbox lengths; the current task: '0' not at all, 'scope' its id, state and description, 'record' its
# whole record; how many activity lines (0: none). The agent fields read are __FIELDS__, 'id' first and
# 'current_task' last. Returns six values per agent with a readable record: id, the fields' values
# (false where absent), inbox and urgent length, the task (id, state and description, or its record as a
# flat list; empty if none), activity lines. An index entry whose record is gone is removed.
# The fields (those of ListedAgent) are written into the script below, not sent with every call.
_AGENT_LINES = TOLERANT_READS + r"""
local agent_p, inbox_p, urgent_p, task_p, activity_p = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local want_lengths, task_mode, lines = ARGV[6] == '1', ARGV[7], tonumber(ARGV[8])
local fields = {__FIELDS__}
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = agent_p .. id
  local f = redis.pcall('HMGET', key, unpack(fields))
  if type(f) == 'table' and not f.err then
    if f[1] and f[1] ~= '' then
      local inbox, urgent, task, activity = 0, 0, {}, {}
      if want_lengths then
        inbox, urgent = len(inbox_p .. id), len(urgent_p .. id)
      end
      local current = f[#f]
      if current and current ~= '' and task_mode ~= '0' then
        if task_mode == 'scope' then
          local t = redis.pcall('HMGET', task_p .. current, 'id', 'state', 'description')
          if type(t) == 'table' and not t.err and t[1] and t[1] ~= '' then task = t end
        else
          task = hash(task_p .. current) or {}
        end
      end
      if lines > 0 then
        activity = range(activity_p .. id, lines)
      end
      out[#out + 1] = id
      out[#out + 1] = f
      out[#out + 1] = inbox
      out[#out + 1] = urgent
      out[#out + 1] = task
      out[#out + 1] = activity
    elseif redis.call('EXISTS', key) == 0 then
      redis.call('SREM', KEYS[1], id)
    end
  end
end
return out
"""


# KEYS[1] the backlog list. ARGV[1] the task key prefix. Returns, per entry in list order: its id, and
# its record's id, description and tags fields (false where absent; all false if the record is missing
# or unreadable). A listing shows no more of a task, so no more is read.
BACKLOG_OVERVIEW = r"""
local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local h = redis.pcall('HMGET', ARGV[1] .. id, 'id', 'description', 'tags')
  if type(h) ~= 'table' or h.err then h = {false, false, false} end
  out[#out + 1] = id
  out[#out + 1] = h
end
return out
"""


# KEYS[1] agent index set. ARGV: prefixes of agent, inbox and urgent keys; how many inbox entries.
# Counts, so that a reply of a few values stands for a town of any size: the agents per raw state field
# ('' where absent), as field/count pairs; the urgent messages of all agents; then three values per agent
# whose regular inbox is not empty: id, name field (false where absent), its first entries (raw JSON).
# Only agents with a readable record count. Reads only: an index entry without a record is skipped here
# (the listings above repair the index). An inbox is read only when its length says it holds something.
AGENT_CENSUS = TOLERANT_READS + r"""
local agent_p, inbox_p, urgent_p, head = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local states, urgent, heads = {}, 0, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.pcall('HMGET', agent_p .. id, 'id', 'state')
  if type(f) == 'table' and not f.err and f[1] and f[1] ~= '' then
    local state = f[2] or ''
    states[state] = (states[state] or 0) + 1
    urgent = urgent + len(urgent_p .. id)
    if len(inbox_p .. id) > 0 then
      heads[#heads + 1] = id
      heads[#heads + 1] = redis.pcall('HGET', agent_p .. id, 'name')
      heads[#heads + 1] = range(inbox_p .. id, head)
    end
  end
end
local counts = {}
for state, n in pairs(states) do
  counts[#counts + 1] = state
  counts[#counts + 1] = n
end
return {counts, urgent, heads}
"""


class AgentCensus(msgspec.Struct, frozen=True):
    """What counting agents needs (``/metrics``): how many are in each state, their urgent messages, and
    the inbox heads of those with mail, without a record each."""

    by_state: dict[AgentState, int]
    urgent: int
    #: ``(agent id, agent name, first entries of its regular inbox)`` of each agent with mail waiting.
    inbox_heads: list[tuple[str, str, list[InboxEntry]]]


_NO_LENGTHS = InboxLengths(inbox=0, urgent=0)


class ListedAgent(msgspec.Struct, frozen=True):
    """What listings show of an agent (``GET /v1/agents``, ``GET /v1/status``, ``tt status``, the
    dashboard), read by ``HMGET`` instead of the whole record. Each field has the type of the same
    field of :class:`~townhall.domain.Agent`, so it is read by the same rules."""

    id: str
    created_at: datetime
    name: str
    nickname: str | None
    role_id: str | None
    parent_agent_id: str | None
    spawn_mode: SpawnMode
    cli: str
    state: AgentState
    rounds_completed: int
    tasks_completed: int
    last_active_at: datetime


class AgentLine(msgspec.Struct, frozen=True):
    """One agent of a listing: what it shows of the record, the mailbox lengths (zeros unless asked
    for) and the current task's description; ``deep`` listings add the task's record and activity."""

    agent: ListedAgent
    lengths: InboxLengths
    #: The description of the agent's current task (``None``: none, or finished).
    current_scope: str | None
    #: ``deep`` only: the current task's record.
    current_task: Task | None = None
    #: ``deep`` only, newest first.
    activity: list[str] = []


#: The fields :data:`AGENT_LINES` reads: the listed ones, and the pointer to the current task last.
_LINE_FIELDS = (*ListedAgent.__struct_fields__, "current_task")
AGENT_LINES = _AGENT_LINES.replace("__FIELDS__", ", ".join(f"'{name}'" for name in _LINE_FIELDS))
_listed_agent = RememberingDecoder(ListedAgent, _LINE_FIELDS)


def _as_hash(flat: Sequence[str]) -> dict[str, str]:
    pairs = iter(flat)
    return dict(zip(pairs, pairs))


class OverviewStore(SubStore):
    _records = Lua(AGENT_RECORDS)
    _backlog = Lua(BACKLOG_OVERVIEW)

    async def agents(self) -> list[Agent]:
        """Every registered agent's record, oldest first, in one round trip. Unreadable records (a key
        of another type) are left out but stay indexed."""
        reply: list[Any] = await self._records(keys=[self._k.agent_index], args=[self._k.agent("")])
        agents = [agent for agent in (agent_from_hash(_as_hash(reply[i + 1])) for i in range(0, len(reply), 2))
                  if agent is not None]
        agents.sort(key=lambda a: (a.created_at, a.id))
        return agents

    _lines = Lua(AGENT_LINES)

    async def lines(self, *, lengths: bool = False, deep: bool = False) -> list[AgentLine]:
        """Every registered agent as listings show it, oldest first, in one round trip: only the listed
        fields and the current task's description are read (with ``deep``, also that task's record and
        the newest activity lines). Unreadable records are left out but stay indexed."""
        k = self._k
        reply: list[Any] = await self._lines(
            keys=[k.agent_index],
            args=[k.agent(""), k.inbox(""), k.urgent(""), k.task(""), k.activity(""), "1" if lengths else "0",
                  "record" if deep else "scope", ACTIVITY_LINES if deep else 0],
        )
        found: list[AgentLine] = []
        for i in range(0, len(reply), 6):
            agent = _listed_agent(reply[i + 1])
            if agent is None:
                continue
            scope, task, raw_task = None, None, reply[i + 4]
            if deep:
                task = task_from_hash(_as_hash(raw_task)) if raw_task else None
                # A finished task is not current, whatever a stale pointer says (a worker killed
                # mid-finish, or a task completed over REST for an agent that had stopped).
                task = None if task is None or task.state.is_terminal else task
                scope = task.description if task else None
            elif raw_task and not TaskState.parse(raw_task[1]).is_terminal:
                scope = raw_task[2] or ""
            found.append(AgentLine(
                agent=agent, current_scope=scope, current_task=task, activity=reply[i + 5],
                lengths=InboxLengths(inbox=reply[i + 2], urgent=reply[i + 3]) if lengths else _NO_LENGTHS))
        found.sort(key=lambda line: (line.agent.created_at, line.agent.id))
        return found

    _census = Lua(AGENT_CENSUS)
    async def census(self, head: int = PEEK_LIMIT) -> AgentCensus:
        """Every registered agent counted by state, their urgent messages summed, and the first ``head``
        entries of each non-empty regular inbox, in one round trip: what Redis sends back grows with the
        agents that have mail, not with the town."""
        k = self._k
        counts, urgent, heads = await self._census(keys=[k.agent_index],
                                                   args=[k.agent(""), k.inbox(""), k.urgent(""), head])
        by_state: dict[AgentState, int] = {}
        for i in range(0, len(counts), 2):
            # Each raw spelling read as a record's state field would be (absent: as a missing field).
            state = AgentState.parse(counts[i] or None)
            by_state[state] = by_state.get(state, 0) + counts[i + 1]
        return AgentCensus(by_state=by_state, urgent=urgent, inbox_heads=[
            (heads[i], heads[i + 1] or "", [inbox_entry(raw) for raw in heads[i + 2]])
            for i in range(0, len(heads), 3)])

    async def backlog(self) -> list[tuple[str, str | None, list[str]]]:
        """The backlog in FIFO order: ``(task id, description, tags)`` per entry, the description
        ``None`` if the record is missing or unreadable; one round trip. Entries that are not UUIDs are
        skipped, as upstream does."""
        reply: list[Any] = await self._backlog(keys=[self._k.backlog], args=[self._k.task("")])
        listing: list[tuple[str, str | None, list[str]]] = []
        for i in range(0, len(reply), 2):
            task_id, (record_id, description, tags) = reply[i], reply[i + 1]
            if not is_uuid(task_id):
                continue
            if record_id:  # as task_from_hash: a record without an id is no record
                listing.append((task_id, description or "", task_tags(tags, task_id)))
            else:
                listing.append((task_id, None, []))
        return listing
