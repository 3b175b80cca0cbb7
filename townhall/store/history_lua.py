"""The task history indexes, as Lua the task scripts share (see :mod:`townhall.store.history`).

Every task has one score, its ``created_at`` in epoch milliseconds, in every history sorted set it
belongs to: the whole history, the set of its current state, and the sets of the agents it was
assigned to and of its tags. Because the score never changes, a task keeps its place in the order, so
a cursor (a score and an id) stays valid while tasks change state.

The key names depend on values found in the record (assignee, tags), so they cannot be declared as
``KEYS`` up front: they are derived from the counts key ``KEYS[2]`` (``tt:{town}:stats:tasks``), which
every task script already passes. Townhall runs on one Redis node (no Cluster), as the rest of the
layout assumes.

The task id index ``idx:tasks:ids`` (every task id, all scores 0, so an id prefix is a ``ZRANGEBYLEX``
lookup) is kept here too, under a name derived the same way: a task enters it when it is first filed in
the history and leaves it when it leaves the history (a lookup also drops an entry whose record is
gone; the startup reconcile rebuilds both together).
"""

from __future__ import annotations

from townhall.domain.tasks import TaskState
from townhall.keys import COUNTS_SUFFIX, HISTORY, TASK_IDS

# Functions taking the task hash `key` explicitly, so that reconcile can index many tasks per call.
HISTORY_LUA = (
    f"local TOWN_PREFIX = string.sub(KEYS[2], 1, #KEYS[2] - {len(COUNTS_SUFFIX)})\n"
    + f"local HISTORY = TOWN_PREFIX .. '{HISTORY}'\n"
    + f"local TASK_IDS = TOWN_PREFIX .. '{TASK_IDS}'\n"
    + "local HISTORY_STATES = {" + ", ".join(f"'{s.value}'" for s in TaskState) + "}\n"
    + r"""
-- RFC 3339 (any offset, any number of fractional digits) to epoch milliseconds; nil if unreadable.
local function epoch_ms(text)
  if not text then return nil end
  local y, mo, d, h, mi, s, rest = string.match(text,
    '^%s*(%d%d%d%d)-(%d%d)-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local frac = string.match(rest, '^%.(%d+)') or ''
  local ms = tonumber(string.sub(frac .. '000', 1, 3))
  rest = string.gsub(rest, '^%.%d+', '')
  local offset = 0
  local sign, oh, om = string.match(rest, '^([+-])(%d%d):?(%d%d)')
  if sign then
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == '-' then offset = -offset end
  end
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
  return (days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s) - offset) * 1000 + ms
end

-- The task `id` is in state `state` now: in the whole history, in that state's set and in no other
-- state's, and in the sets of its assignee `agent` and its tags (`tags`, the record's JSON). Agent and
-- tag sets only grow while the record lives (a reader checks the record), so no previous value has to
-- be known here. A task not yet in the history is in no state set either, which spares reconcile most
-- of the work for records the original tt wrote; it is filed with `score` (its created_at in epoch ms,
-- read from the text `created` when the caller does not know it) and enters the id index (prefix
-- lookups) too. A filed task keeps its score.
local function history_file(id, state, score, created, agent, tags)
  local known = redis.call('ZSCORE', HISTORY, id)
  if known then
    score = known
  else
    score = score or epoch_ms(created)
    if not score then
      local t = redis.call('TIME')
      score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    redis.call('ZADD', HISTORY, score, id)
    redis.call('ZADD', TASK_IDS, '0', id)
  end
  for _, s in ipairs(HISTORY_STATES) do
    if s == state then
      redis.call('ZADD', HISTORY .. ':state:' .. s, score, id)
    elseif known then
      redis.call('ZREM', HISTORY .. ':state:' .. s, id)
    end
  end
  if agent and agent ~= '' then redis.call('ZADD', HISTORY .. ':agent:' .. agent, score, id) end
  if tags and tags ~= '[]' and tags ~= '' then
    local ok, list = pcall(cjson.decode, tags)
    if ok and type(list) == 'table' then
      for _, tag in ipairs(list) do
        if type(tag) == 'string' and tag ~= '' then redis.call('ZADD', HISTORY .. ':tag:' .. tag, score, id) end
      end
    end
  end
end

-- history_file with what the task hash `key` says.
local function history_index(key, id, state)
  local f = redis.call('HMGET', key, 'created_at', 'assigned_to', 'tags')
  history_file(id, state, nil, f[1], f[2], f[3])
end

-- The task is gone (or about to be): out of the whole history, every state set and the id index. The
-- agent and tag sets are left to history_forget (they need the record) or to their readers.
local function history_unindex(id)
  redis.call('ZREM', HISTORY, id)
  redis.call('ZREM', TASK_IDS, id)
  for _, s in ipairs(HISTORY_STATES) do redis.call('ZREM', HISTORY .. ':state:' .. s, id) end
end

-- The task (hash `key`, still readable) is about to be deleted: out of every history set.
local function history_forget(key, id)
  local agent = redis.call('HGET', key, 'assigned_to')
  if agent and agent ~= '' then redis.call('ZREM', HISTORY .. ':agent:' .. agent, id) end
  local ok, tags = pcall(cjson.decode, redis.call('HGET', key, 'tags') or '[]')
  if ok and type(tags) == 'table' then
    for _, tag in ipairs(tags) do
      if type(tag) == 'string' then redis.call('ZREM', HISTORY .. ':tag:' .. tag, id) end
    end
  end
  history_unindex(id)
end
"""
)
