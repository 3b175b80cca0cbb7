"""Lua scripts for every multi-key change that must never be seen half done.

Task scripts share one key layout so the index/counter bookkeeping is written once:
KEYS[1] task hash, KEYS[2] counts hash, KEYS[3] completed-total counter,
KEYS[4..6] open-state index sets (pending, assigned, running); extra keys follow.
"""

from __future__ import annotations

# Bookkeeping shared by all task scripts. `old == nil` means "no record before"; a record written by
# a tool that does not maintain our indexes is recognised by its id missing from the open-state set,
# in which case it was never counted and must not be decremented.
_TASK_PRELUDE = r"""
local IDX = {pending = KEYS[4], assigned = KEYS[5], running = KEYS[6]}
local KNOWN = {pending = true, assigned = true, running = true, completed = true, failed = true,
               cancelled = true}

local function norm_task_state(raw)
  if not raw then return 'pending' end
  local s = string.lower(string.match(raw, '^%s*(.-)%s*$'))
  if s == 'in_flight' then return 'running' end
  if KNOWN[s] then return s end
  return 'pending'
end

local function current_task_state(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  return norm_task_state(redis.call('HGET', key, 'state'))
end

local function adjust(state, delta)
  local n = redis.call('HINCRBY', KEYS[2], state, delta)
  if n < 0 then redis.call('HSET', KEYS[2], state, 0) end
end

local function move(id, old, new)
  if old == new then
    if new and IDX[new] and redis.call('SADD', IDX[new], id) == 1 then adjust(new, 1) end
    return
  end
  if old then
    local counted = true
    if IDX[old] then counted = redis.call('SREM', IDX[old], id) == 1 end
    if counted then adjust(old, -1) end
  end
  if new then
    adjust(new, 1)
    if IDX[new] then redis.call('SADD', IDX[new], id) end
    if new == 'completed' then redis.call('INCR', KEYS[3]) end
  end
end

local function allowed(csv, state)
  if csv == '' then return true end
  for s in string.gmatch(csv, '[^,]+') do
    if s == state then return true end
  end
  return false
end
"""

# ARGV: id, new_state ('' keeps it), allowed_from csv ('' = any), must_exist (1/0), nset,
#       field, value ×nset, fields to delete...
# Returns {applied, old_state or ''}.
TASK_WRITE = _TASK_PRELUDE + r"""
local id, new, allow, must_exist = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = current_task_state(KEYS[1])
if old == nil and must_exist == '1' then return {0, ''} end
if not allowed(allow, old or '') then return {0, old or ''} end
if new == '' then new = old end
local nset = tonumber(ARGV[5])
local pairs_ = {}
for i = 6, 5 + 2 * nset do pairs_[#pairs_ + 1] = ARGV[i] end
if new then pairs_[#pairs_ + 1] = 'state'; pairs_[#pairs_ + 1] = new end
if #pairs_ > 0 then redis.call('HSET', KEYS[1], unpack(pairs_)) end
for i = 6 + 2 * nset, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
move(id, old, new)
return {1, old or ''}
"""

# ARGV: id. Returns 1 if a record was deleted.
# A new task and the list entries that announce it, in one step (one round trip, never half done).
# KEYS[7..]: lists to RPUSH to. ARGV: id, state, value per extra key ×(#KEYS-6), nset, field, value
# ×nset, fields to delete...
TASK_CREATE_PUSH = _TASK_PRELUDE + r"""
local id, new = ARGV[1], ARGV[2]
local npush = #KEYS - 6
local at = 3 + npush
local nset = tonumber(ARGV[at])
local pairs_ = {}
for i = at + 1, at + 2 * nset do pairs_[#pairs_ + 1] = ARGV[i] end
pairs_[#pairs_ + 1] = 'state'; pairs_[#pairs_ + 1] = new
local old = current_task_state(KEYS[1])
redis.call('HSET', KEYS[1], unpack(pairs_))
for i = at + 1 + 2 * nset, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
move(id, old, new)
for i = 1, npush do redis.call('RPUSH', KEYS[6 + i], ARGV[2 + i]) end
return 1
"""

TASK_DELETE = _TASK_PRELUDE + r"""
local old = current_task_state(KEYS[1])
if old == nil then return 0 end
redis.call('DEL', KEYS[1])
move(ARGV[1], old, nil)
return 1
"""

# An id found in an open-state set whose record says otherwise was changed by another tool: move
# it (and its count) to where it belongs. ARGV: id, the state whose set it was found in.
TASK_REPAIR = _TASK_PRELUDE + r"""
local id, believed = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', IDX[believed], id) == 0 then return 0 end
local actual = current_task_state(KEYS[1])
if actual == believed then return 0 end
redis.call('SREM', IDX[believed], id)
adjust(believed, -1)
if actual then move(id, nil, actual) end
return 1
"""

# KEYS[7] agent hash ('' when no agent). Finish a task (completed/failed) together with its agent:
# clear the agent's current_task if it points at the task, and count a completion unless the task was
# already terminal. ARGV: id, new state, allowed_from csv ('' = any), now, result, count (1/0).
# Returns {applied, old_state or ''}.
TASK_FINISH = _TASK_PRELUDE + r"""
local id, new, allow, now, result, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = current_task_state(KEYS[1])
if old == nil then return {0, ''} end
if not allowed(allow, old) then return {0, old} end
redis.call('HSET', KEYS[1], 'state', new, 'result', result, 'completed_at', now, 'updated_at', now)
move(id, old, new)
if KEYS[7] ~= '' and redis.call('EXISTS', KEYS[7]) == 1 then
  if redis.call('HGET', KEYS[7], 'current_task') == id then redis.call('HDEL', KEYS[7], 'current_task') end
  local was_terminal = old == 'completed' or old == 'failed' or old == 'cancelled'
  if count == '1' and not was_terminal then redis.call('HINCRBY', KEYS[7], 'tasks_completed', 1) end
end
return {1, old}
"""

# KEYS[7] backlog, KEYS[8] agent inbox. ARGV: id, agent_id, now, message json, require_record (1/0).
# Returns 0 not in backlog, 1 claimed, 2 popped but dropped (no record and one was required).
BACKLOG_CLAIM = _TASK_PRELUDE + r"""
local id, agent, now, msg, require_record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('LREM', KEYS[7], 1, id) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old == nil then
  if require_record == '1' then return 2 end
else
  redis.call('HSET', KEYS[1], 'state', 'assigned', 'assigned_to', agent, 'updated_at', now)
  move(id, old, 'assigned')
end
redis.call('RPUSH', KEYS[8], msg)
return 1
"""

# KEYS[7] backlog. ARGV: id. LREM from the backlog and, if it was there, delete the task record.
BACKLOG_DISCARD = _TASK_PRELUDE + r"""
if redis.call('LREM', KEYS[7], 1, ARGV[1]) == 0 then return 0 end
local old = current_task_state(KEYS[1])
if old ~= nil then
  redis.call('DEL', KEYS[1])
  move(ARGV[1], old, nil)
end
return 1
"""

_AGENT_PRELUDE = r"""
local KNOWN = {cold = true, starting = true, idle = true, working = true, paused = true,
               draining = true, stopped = true, error = true}
local function agent_state(key)
  local raw = redis.call('HGET', key, 'state')
  if not raw then return 'starting' end
  local s = string.lower(string.match(raw, '^%s*(.-)%s*$'))
  if KNOWN[s] then return s end
  return 'starting'
end
"""

# KEYS[1] agent hash. ARGV: allowed csv ('' = any), nset, field, value ×nset, fields to delete...
# Never creates a record: a pruned agent must not come back as a partial hash.
AGENT_WRITE = _AGENT_PRELUDE + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local old = agent_state(KEYS[1])
local allow = ARGV[1]
if allow ~= '' then
  local ok = false
  for s in string.gmatch(allow, '[^,]+') do if s == old then ok = true end end
  if not ok then return {0, old} end
end
local nset = tonumber(ARGV[2])
if nset > 0 then
  local pairs_ = {}
  for i = 3, 2 + 2 * nset do pairs_[#pairs_ + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(pairs_))
end
for i = 3 + 2 * nset, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return {1, old}
"""

# KEYS[1] agent hash. ARGV: field, increment. Returns the new value, or false if no record.
AGENT_INCR = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
"""

# KEYS[1] agent hash. ARGV: task id. Clears current_task only if it still points at that task.
AGENT_CLEAR_CURRENT_TASK = r"""
if redis.call('HGET', KEYS[1], 'current_task') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'current_task')
  return 1
end
return 0
"""

# KEYS[1] urgent list, KEYS[2] inbox. Returns {urgent entries, inbox entries} and empties both.
INBOX_DRAIN = r"""
local urgent = redis.call('LRANGE', KEYS[1], 0, -1)
local regular = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return {urgent, regular}
"""

# KEYS[1] processing list, KEYS[2] inbox. Moves everything back to the inbox front, order kept.
PROCESSING_RESTORE = r"""
local n = 0
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do n = n + 1 end
return n
"""

# KEYS[1] counter. ARGV: floor. Raises the counter to at least `floor`; never lowers it.
COUNTER_FLOOR = r"""
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local floor = tonumber(ARGV[1])
if floor > cur then redis.call('SET', KEYS[1], floor); return floor end
return cur
"""

# KEYS[1] lock key. ARGV: owner token. Deletes the lock only if this owner still holds it.
LOCK_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] agent hash, KEYS[2] agent index set, KEYS[3..] keys owned by the agent (inbox, urgent, ...).
# ARGV: agent id, allowed states csv ('' = any). Deletes everything only if the state is allowed, so a
# prune never removes an agent that was restarted meanwhile. Returns 1 if deleted.
AGENT_DELETE = _AGENT_PRELUDE + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
local allow = ARGV[2]
if allow ~= '' then
  local state = agent_state(KEYS[1])
  local ok = false
  for s in string.gmatch(allow, '[^,]+') do if s == state then ok = true end end
  if not ok then return 0 end
end
redis.call('DEL', KEYS[1])
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
