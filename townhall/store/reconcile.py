"""Startup reconciliation: bring our indexes and counters in line with the records themselves.

Other tools (the original ``tt``, the dispatcher, a hand-written script) write records without
maintaining townhall's indexes, so at startup one ``SCAN`` pass over the town's keys finds them. This
is the only scan townhall does. Other townhall processes and replicas may be serving the town
meanwhile, so nothing here may undo a write made during the scan: every correction is made per record
by a script that reads the record and fixes its index entries in the same atomic step, and the
terminal-state counts (which no index backs) are recounted only if no task entered or left a terminal
state while they were being counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, Iterable

import msgspec

from townhall.domain.ids import is_uuid
from townhall.domain.tasks import OPEN_TASK_STATES, TERMINAL_TASK_STATES, TaskState
from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import StoreContext
from townhall.store.history import HistoryStore
from townhall.store.tasks import TASK_PRELUDE, TaskStore, task_script_keys

log = logging.getLogger(__name__)

SCAN_COUNT = 1000
_BATCH = 1000
_GLOB_SPECIAL = "\\*?[]"

# KEYS[1] counter. ARGV: floor. Raises the counter to at least `floor`; never lowers it.
COUNTER_FLOOR = r"""
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local floor = tonumber(ARGV[1])
if floor > cur then redis.call('SET', KEYS[1], floor); return floor end
return cur
"""

# KEYS: the task script layout. ARGV: id. The task's id ends up in the open-state set of its state
# and in no other, with the counts moved as the task scripts move them (an id missing from its set
# was never counted). Returns the state, '' when the record is gone.
TASK_INDEX_FIX = TASK_PRELUDE + r"""
local id = ARGV[1]
local actual = current_task_state(KEYS[1])
for state, key in pairs(IDX) do
  if state ~= actual and redis.call('SREM', key, id) == 1 then adjust(state, '-1') end
end
if actual and IDX[actual] and redis.call('SADD', IDX[actual], id) == 1 then adjust(actual, '1') end
return actual or ''
"""

# KEYS: counts hash, then the open-state sets. ARGV: the open states (in KEYS order). The task scripts
# keep an open state's count equal to its set's size; this restores that at one instant.
OPEN_COUNTS_FROM_SETS = r"""
for i = 1, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], redis.call('SCARD', KEYS[i + 1])) end
return 1
"""

# KEYS[1] counts hash. ARGV: the terminal_moves value read before counting, then state, count pairs.
# Applies the recount only if no terminal count moved since (else the next start recounts).
TERMINAL_COUNTS_IF_UNMOVED = r"""
if (redis.call('HGET', KEYS[1], 'terminal_moves') or '0') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS[1] index set, KEYS[2] the member's record. Drops the member only if the record is gone now.
DROP_IF_GONE = r"""
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end
return 0
"""

#: Attempts at recounting the terminal states while the town is busy.
TERMINAL_RECOUNT_TRIES = 3


class ReconcileReport(msgspec.Struct, frozen=True):
    agents: int
    tasks: int
    missions: int
    task_counts: dict[str, int]
    completed_total: int
    skipped_keys: list[str]


def escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so a town named ``a*b`` matches only itself."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _chunks(items: list[str], size: int = _BATCH) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _scan_ids(ctx: StoreContext, slices: list[str] | None = None) -> tuple[list[str], list[str], list[str]]:
    """Agent, task and mission ids of the town's record keys (one SCAN pass); the agent and tag slices
    of the task history are collected into ``slices`` if given."""
    k = ctx.keys
    agent_ids: list[str] = []
    task_ids: list[str] = []
    mission_ids: list[str] = []
    slice_prefixes = (k.history_agent(""), k.history_tag(""))
    async for key in ctx.redis.scan_iter(match=escape_glob(k.prefix) + "*", count=SCAN_COUNT):
        if slices is not None and key.startswith(slice_prefixes):
            slices.append(key)
            continue
        kind, _, ident = key[len(k.prefix) :].partition(":")
        if not ident or ":" in ident:
            continue  # sub-keys (mission:{id}:work …) and keys of other towns whose name extends ours
        if kind == "agent":
            agent_ids.append(ident)
        elif kind == "task":
            task_ids.append(ident)
        elif kind == "mission" and is_uuid(ident):
            mission_ids.append(ident)
    return agent_ids, task_ids, mission_ids


async def discover(ctx: StoreContext) -> tuple[int, int]:
    """Bring the agent and mission listing indexes up to date with records other tools wrote since
    startup (a periodic background pass; the task indexes are left to the startup reconcile, whose
    swap must not race live writers). Returns (agents, missions) listed."""
    agent_ids, _, mission_ids = await _scan_ids(ctx)
    skipped: list[str] = []
    live_agents = await _agents(ctx, agent_ids, skipped)
    live_missions = await _missions(ctx, mission_ids, skipped)
    await _merge_index(ctx, ctx.keys.agent_index, live_agents, ctx.keys.agent)
    await _merge_index(ctx, ctx.keys.mission_index, live_missions, ctx.keys.mission)
    return len(live_agents), len(live_missions)


async def reconcile(ctx: StoreContext) -> ReconcileReport:
    r, k = ctx.redis, ctx.keys
    # Read before the scan starts: see _recount_terminal_states.
    terminal_moves = await r.hget(k.task_counts, "terminal_moves") or "0"
    slices: list[str] = []
    agent_ids, task_ids, mission_ids = await _scan_ids(ctx, slices)
    skipped: list[str] = []
    live_agents = await _agents(ctx, agent_ids, skipped)
    live_missions = await _missions(ctx, mission_ids, skipped)

    await _merge_index(ctx, k.agent_index, live_agents, k.agent)
    await _merge_index(ctx, k.mission_index, live_missions, k.mission)
    states = await _fix_task_indexes(ctx, task_ids, skipped)
    await _recount_terminal_states(ctx, terminal_moves, states)
    await _rebuild_history(ctx, states, slices)
    counts = await _counts(ctx)
    total = int(
        await r.register_script(COUNTER_FLOOR)(keys=[k.tasks_completed_total],
                                               args=[sum(1 for s in states.values() if s == TaskState.COMPLETED.value)])
    )
    await r.set(k.reconciled_at, format_hash_time(utc_now()))
    for key in skipped:
        log.warning("reconcile: skipped unreadable key %s (not a hash/record townhall understands)", key)
    return ReconcileReport(
        agents=len(live_agents),
        tasks=len(states),
        missions=len(live_missions),
        task_counts=counts,
        completed_total=total,
        skipped_keys=skipped,
    )


async def _agents(ctx: StoreContext, ids: list[str], skipped: list[str]) -> list[str]:
    """Ids whose hash has an ``id`` field. Legacy JSON-string records (WRONGTYPE) are skipped."""
    live: list[str] = []
    for chunk in _chunks(ids):
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.hget(ctx.keys.agent(ident), "id")
            replies = await pipe.execute(raise_on_error=False)
        for ident, reply in zip(chunk, replies):
            if isinstance(reply, str) and reply:
                live.append(ident)
            elif isinstance(reply, Exception):
                skipped.append(ctx.keys.agent(ident))
    return live


async def _task_states(ctx: StoreContext, ids: list[str], skipped: list[str] | None = None) -> dict[str, str]:
    states: dict[str, str] = {}
    for chunk in _chunks(ids):
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.hmget(ctx.keys.task(ident), ["id", "state"])
            replies = await pipe.execute(raise_on_error=False)
        for ident, reply in zip(chunk, replies):
            if isinstance(reply, Exception):
                if skipped is not None:
                    skipped.append(ctx.keys.task(ident))
            elif reply[0]:
                states[ident] = TaskState.parse(reply[1]).value
    return states


async def _fix_task_indexes(ctx: StoreContext, scanned: list[str], skipped: list[str]) -> dict[str, str]:
    """Put every task found, and every id our open-state sets hold, where its record says, one atomic
    script per task (pipelined); then the open counts from the sets. Returns the state of each task
    record found (unreadable keys go to ``skipped``)."""
    r, k = ctx.redis, ctx.keys
    states = await _task_states(ctx, scanned, skipped)
    indexed: set[str] = set()
    for state in OPEN_TASK_STATES:
        indexed |= set(await r.smembers(k.tasks_in_state(state.value)))
    fix = r.register_script(TASK_INDEX_FIX)
    unreadable = set(skipped)
    for chunk in _chunks(sorted(i for i in set(states) | indexed if k.task(i) not in unreadable)):
        async with r.pipeline(transaction=False) as pipe:
            for ident in chunk:
                await fix(keys=task_script_keys(k, ident), args=[ident], client=pipe)
            await pipe.execute()
    await r.register_script(OPEN_COUNTS_FROM_SETS)(
        keys=[k.task_counts, *(k.tasks_in_state(s.value) for s in OPEN_TASK_STATES)],
        args=[s.value for s in OPEN_TASK_STATES],
    )
    return states


async def _recount_terminal_states(ctx: StoreContext, moves: str, states: dict[str, str]) -> bool:
    """Apply the terminal states' count of ``states`` (read by a scan that began after
    ``terminal_moves`` was ``moves``) only if no task entered or left a terminal state since then (the
    task scripts count such moves): then every terminal task of that moment was present through the
    whole scan, which ``SCAN`` guarantees to return. Otherwise count again with a fresh scan, a few
    times; ``False`` when the town stayed too busy, leaving the counts the task scripts kept (exact for
    every task townhall wrote)."""
    r, k = ctx.redis, ctx.keys
    apply = r.register_script(TERMINAL_COUNTS_IF_UNMOVED)
    for attempt in range(TERMINAL_RECOUNT_TRIES):
        if attempt:
            moves = await r.hget(k.task_counts, "terminal_moves") or "0"
            _, task_ids, _ = await _scan_ids(ctx)
            states = await _task_states(ctx, task_ids)
        counted = Counter(states.values())
        pairs: list[str] = []
        for state in sorted(TERMINAL_TASK_STATES, key=lambda s: s.value):
            pairs += [state.value, str(counted.get(state.value, 0))]
        if await apply(keys=[k.task_counts], args=[moves, *pairs]):
            return True
    log.info("reconcile: tasks kept finishing while counted; terminal counts left as kept")
    return False


async def _counts(ctx: StoreContext) -> dict[str, int]:
    raw = await ctx.redis.hgetall(ctx.keys.task_counts)
    return {s.value: max(int(raw.get(s.value, 0) or 0), 0) for s in TaskState}


async def _missions(ctx: StoreContext, ids: list[str], skipped: list[str]) -> list[str]:
    live: list[str] = []
    for chunk in _chunks(ids):
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.exists(ctx.keys.mission(ident))
                pipe.type(ctx.keys.mission(ident))
            replies = await pipe.execute(raise_on_error=False)
        for i, ident in enumerate(chunk):
            exists, kind = replies[2 * i], replies[2 * i + 1]
            if exists and kind == "string":
                live.append(ident)
            elif exists:
                skipped.append(ctx.keys.mission(ident))
    return live


async def _merge_index(
    ctx: StoreContext, index: str, found: list[str], record_key: Callable[[str], str]
) -> None:
    """Add what the scan found, then drop members whose record is gone. Additive on purpose: a record
    created during the scan is never removed from the index, and a member is dropped by a script that
    checks its record in the same step."""
    r = ctx.redis
    for chunk in _chunks(found):
        await r.sadd(index, *chunk)
    stale = sorted(set(await r.smembers(index)) - set(found))
    drop = r.register_script(DROP_IF_GONE)
    for chunk in _chunks(stale):
        async with r.pipeline(transaction=False) as pipe:
            for ident in chunk:
                await drop(keys=[index, record_key(ident)], args=[ident], client=pipe)
            await pipe.execute()


async def _rebuild_history(ctx: StoreContext, states: dict[str, str], slices: list[str]) -> None:
    """File every task record in the history under its state, and its id in the task id index. Tasks
    our scripts have indexed are kept up to date by them; so only records missing from the history (the original ``tt`` wrote them),
    entries whose record is gone, and entries in the wrong state set (a state changed by another tool)
    are (re)indexed, each atomically from its record as it is then — a first start on a long history
    written by others costs one script step per task (:data:`REINDEX_BATCH` tasks per call)."""
    r, k = ctx.redis, ctx.keys
    history = HistoryStore(ctx, TaskStore(ctx))
    indexed = {m async for m, _ in r.zscan_iter(k.history, count=SCAN_COUNT)}
    redo = [i for i in states if i not in indexed] + [i for i in indexed if i not in states]
    for state in TaskState:
        filed = {m async for m, _ in r.zscan_iter(k.history_state(state.value), count=SCAN_COUNT)}
        redo += [i for i in filed if states.get(i, state.value) != state.value]
        redo += [i for i in indexed if states.get(i) == state.value and i not in filed]
    await history.reindex(list(dict.fromkeys(redo)))
    # The task id index (prefix lookups) holds what the history holds; the scripts add a task to it when
    # they first file it, so records indexed before it existed, or by another tool, are added here.
    # Ids of records gone since are dropped (a lookup drops them too).
    listed = {m async for m, _ in r.zscan_iter(k.task_ids, count=SCAN_COUNT)}
    for chunk in _chunks([i for i in states if i not in listed]):
        await r.zadd(k.task_ids, dict.fromkeys(chunk, 0))
    for chunk in _chunks([i for i in listed if i not in states]):
        async with r.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.exists(k.task(ident))
            exists = await pipe.execute()
        gone = [i for i, e in zip(chunk, exists) if not e]
        if gone:
            await r.zrem(k.task_ids, *gone)
    for key in slices:
        members = [m async for m, _ in r.zscan_iter(key, count=SCAN_COUNT) if m not in states]
        for chunk in _chunks(members):
            async with r.pipeline(transaction=False) as pipe:
                for ident in chunk:
                    pipe.exists(k.task(ident))
                exists = await pipe.execute()
            await history.drop(key, [i for i, e in zip(chunk, exists) if not e])
