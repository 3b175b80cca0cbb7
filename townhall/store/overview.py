"""Listings answered in one round trip: every agent with what ``status`` shows of it, and the backlog
with its task records. Each is one Lua script, where a client would chain dependent calls (the index,
then the records, then what the records point at); Redis runs it while other clients wait, about a
millisecond per thousand agents.

The scripts build record keys from prefixes :class:`townhall.keys.TownKeys` gives them (``agent("")``
and so on), so key names still come from one place. They read keys they were not given in ``KEYS``,
which a single Redis (townhall's only topology) allows.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec

from townhall.domain import Agent, AgentState, Task
from townhall.domain.ids import is_uuid
from townhall.store.codec import agent_from_hash, task_from_hash, task_tags
from townhall.store.context import Lua, SubStore
from townhall.store.messages import PEEK_LIMIT, InboxEntry, InboxLengths, inbox_entry

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

# KEYS[1] agent index set. ARGV: prefixes of agent, inbox, urgent, task and activity keys; '1' for the
# mailbox lengths; '1' for the current task's record; how many activity lines (0: none).
# Returns six values per agent: id, record (flat field/value list; empty if unreadable), inbox and
# urgent length, current task record (flat list, empty if none), activity lines. An index entry whose
# record is gone is removed from the index here, so the listing and the index agree afterwards.
AGENTS_OVERVIEW = TOLERANT_READS + r"""
local agent_p, inbox_p, urgent_p, task_p, activity_p = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local want_lengths, want_task, lines = ARGV[6] == '1', ARGV[7] == '1', tonumber(ARGV[8])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = hash(agent_p .. id)
  if record and #record == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    local inbox, urgent, task, activity = 0, 0, {}, {}
    if not record then
      record = {}
    else
      if want_lengths then
        inbox, urgent = len(inbox_p .. id), len(urgent_p .. id)
      end
      if want_task then
        for i = 1, #record, 2 do
          if record[i] == 'current_task' and record[i + 1] ~= '' then
            task = hash(task_p .. record[i + 1]) or {}
          end
        end
      end
      if lines > 0 then
        activity = range(activity_p .. id, lines)
      end
    end
    out[#out + 1] = id
    out[#out + 1] = record
    out[#out + 1] = inbox
    out[#out + 1] = urgent
    out[#out + 1] = task
    out[#out + 1] = activity
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
# Returns five values per agent with a readable record: id, name and state fields (false where absent),
# urgent length, the first inbox entries (raw JSON). Reads only: an index entry without a record is
# skipped here (the full overview above repairs the index).
AGENT_TALLY = TOLERANT_READS + r"""
local agent_p, inbox_p, urgent_p, head = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.pcall('HMGET', agent_p .. id, 'id', 'name', 'state')
  if type(f) == 'table' and not f.err and f[1] and f[1] ~= '' then
    local inbox = range(inbox_p .. id, head)
    out[#out + 1] = id
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = len(urgent_p .. id)
    out[#out + 1] = inbox
  end
end
return out
"""


class AgentTally(msgspec.Struct, frozen=True):
    """What counting agents needs of one (``/metrics``, the scaling signal), without its whole record."""

    id: str
    name: str
    state: AgentState
    urgent: int
    #: The first entries of its regular inbox (at most the ``head`` asked for).
    inbox_head: list[InboxEntry]


class AgentView(msgspec.Struct, frozen=True):
    """One agent and what a listing asked for besides its record."""

    agent: Agent
    lengths: InboxLengths
    current_task: Task | None = None
    #: Newest first; empty unless asked for.
    activity: list[str] = []


_NO_LENGTHS = InboxLengths(inbox=0, urgent=0)


def _as_hash(flat: Sequence[str]) -> dict[str, str]:
    pairs = iter(flat)
    return dict(zip(pairs, pairs))


class OverviewStore(SubStore):
    _agents = Lua(AGENTS_OVERVIEW)
    _backlog = Lua(BACKLOG_OVERVIEW)

    async def agents(self, *, lengths: bool = False, current_task: bool = False,
                     activity: int = 0) -> list[AgentView]:
        """Every registered agent, oldest first, in one round trip; with ``lengths`` its mailbox
        lengths (else zeros), with ``current_task`` that task's record, with ``activity`` its newest
        lines. Unreadable records (a key of another type) are left out but stay indexed."""
        k = self._k
        reply: list[Any] = await self._agents(
            keys=[k.agent_index],
            args=[k.agent(""), k.inbox(""), k.urgent(""), k.task(""), k.activity(""),
                  "1" if lengths else "0", "1" if current_task else "0", activity],
        )
        views: list[AgentView] = []
        for i in range(0, len(reply), 6):
            agent = agent_from_hash(_as_hash(reply[i + 1])) if reply[i + 1] else None
            if agent is None:
                continue
            task = task_from_hash(_as_hash(reply[i + 4])) if reply[i + 4] else None
            if task is not None and task.state.is_terminal:
                # A finished task is not current, whatever a stale pointer says (a worker killed
                # mid-finish, or a task completed over REST for an agent that had stopped).
                task = None
            views.append(AgentView(agent=agent, current_task=task, activity=reply[i + 5],
                                   lengths=InboxLengths(inbox=reply[i + 2], urgent=reply[i + 3]) if lengths
                                   else _NO_LENGTHS))
        views.sort(key=lambda v: (v.agent.created_at, v.agent.id))
        return views

    _tally = Lua(AGENT_TALLY)
    async def tally(self, head: int = PEEK_LIMIT) -> list[AgentTally]:
        """Every registered agent's state, urgent length and first ``head`` inbox entries, in one
        round trip: what counting needs, at a fraction of decoding every record (unordered)."""
        k = self._k
        reply: list[Any] = await self._tally(keys=[k.agent_index], args=[k.agent(""), k.inbox(""), k.urgent(""), head])
        return [AgentTally(id=reply[i], name=reply[i + 1] or "", state=AgentState.parse(reply[i + 2]),
                           urgent=reply[i + 3], inbox_head=[inbox_entry(raw) for raw in reply[i + 4]])
                for i in range(0, len(reply), 5)]

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
