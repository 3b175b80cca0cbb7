"""Startup reconciliation: rebuild our indexes and counters from the records themselves.

Other tools (the original ``tt``, the dispatcher, a hand-written script) write records without
maintaining townhall's indexes, so at startup one ``SCAN`` pass over the town's keys rebuilds them.
This is the only scan townhall does. Task state sets and counts are built under temporary names and
swapped in with ``RENAME`` so that readers never see half an index.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Callable, Iterable

import msgspec

from townhall.domain.ids import is_uuid
from townhall.domain.tasks import OPEN_TASK_STATES, TaskState
from townhall.domain.timestamps import format_hash_time, utc_now
from townhall.store.context import StoreContext

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


async def _scan_ids(ctx: StoreContext) -> tuple[list[str], list[str], list[str]]:
    """Agent, task and mission ids of the town's record keys (one SCAN pass)."""
    k = ctx.keys
    agent_ids: list[str] = []
    task_ids: list[str] = []
    mission_ids: list[str] = []
    async for key in ctx.redis.scan_iter(match=escape_glob(k.prefix) + "*", count=SCAN_COUNT):
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
    agent_ids, task_ids, mission_ids = await _scan_ids(ctx)
    skipped: list[str] = []
    live_agents = await _agents(ctx, agent_ids, skipped)
    states = await _task_states(ctx, task_ids, skipped)
    live_missions = await _missions(ctx, mission_ids, skipped)

    await _merge_index(ctx, k.agent_index, live_agents, k.agent)
    await _merge_index(ctx, k.mission_index, live_missions, k.mission)
    counts = await _swap_task_indexes(ctx, states)
    total = int(
        await r.register_script(COUNTER_FLOOR)(keys=[k.tasks_completed_total], args=[counts[TaskState.COMPLETED.value]])
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


async def _task_states(ctx: StoreContext, ids: list[str], skipped: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for chunk in _chunks(ids):
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.hmget(ctx.keys.task(ident), ["id", "state"])
            replies = await pipe.execute(raise_on_error=False)
        for ident, reply in zip(chunk, replies):
            if isinstance(reply, Exception):
                skipped.append(ctx.keys.task(ident))
            elif reply[0]:
                states[ident] = TaskState.parse(reply[1]).value
    return states


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
    created during the scan is never removed from the index."""
    r = ctx.redis
    for chunk in _chunks(found):
        await r.sadd(index, *chunk)
    stale = sorted(set(await r.smembers(index)) - set(found))
    for chunk in _chunks(stale):
        async with r.pipeline(transaction=False) as pipe:
            for ident in chunk:
                pipe.exists(record_key(ident))
            exists = await pipe.execute()
        missing = [i for i, e in zip(chunk, exists) if not e]
        if missing:
            await r.srem(index, *missing)


async def _swap_task_indexes(ctx: StoreContext, states: dict[str, str]) -> dict[str, int]:
    r, k = ctx.redis, ctx.keys
    token = uuid.uuid4().hex
    counts = Counter(states.values())
    by_state = {s.value: [i for i, st in states.items() if st == s.value] for s in OPEN_TASK_STATES}
    temp = {s: k.rebuilding(k.tasks_in_state(s), token) for s in by_state}
    temp_counts = k.rebuilding(k.task_counts, token)
    full = {s.value: counts.get(s.value, 0) for s in TaskState}
    try:
        for state, ids in by_state.items():
            for chunk in _chunks(ids):
                await r.sadd(temp[state], *chunk)
        await r.hset(temp_counts, mapping={s: str(n) for s, n in full.items()})
        async with r.pipeline(transaction=True) as pipe:
            for state, ids in by_state.items():
                if ids:
                    pipe.rename(temp[state], k.tasks_in_state(state))
                else:
                    pipe.delete(k.tasks_in_state(state))
            pipe.rename(temp_counts, k.task_counts)
            await pipe.execute()
    finally:
        await r.delete(*temp.values(), temp_counts)
    return full
