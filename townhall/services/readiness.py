"""Readiness: can we reach Redis, and is the mission dispatcher ticking (reference §9.2)?"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import msgspec
import redis.exceptions

from townhall.domain import MissionState
from townhall.store import TownStore

DISPATCHER_FRESH = timedelta(seconds=90)


class Readiness(msgspec.Struct):
    ok: bool
    dispatcher: str
    latency_ms: float | None = None
    detail: str | None = None


async def check_readiness(store: TownStore) -> Readiness:
    started = time.perf_counter()
    try:
        reply = await store.redis.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        return Readiness(ok=False, dispatcher="unknown", detail=f"Redis ping failed: {exc}")
    latency = (time.perf_counter() - started) * 1000
    if reply is not True:
        return Readiness(ok=False, dispatcher="unknown", detail=f"Unexpected Redis PING response: {reply}")
    return Readiness(ok=True, dispatcher=await dispatcher_status(store), latency_ms=latency)


async def dispatcher_status(store: TownStore) -> str:
    """``idle`` with no unfinished mission, ``running`` if one was ticked within 90 s, else ``stalled``.

    Unlike upstream (GAP 31), a mission stopped through the API (blocked and out of the active set) is
    not waiting for the dispatcher, so it does not make the dispatcher look stalled.
    """
    try:
        missions = await store.missions.list()
        active = set(await store.missions.active_ids())
    except (redis.exceptions.RedisError, OSError, ValueError):
        return "idle"  # upstream swallows mission read errors the same way
    now = datetime.now(timezone.utc)
    waiting = [
        m for m in missions
        if not m.state.is_terminal and (m.id in active or m.state is not MissionState.BLOCKED)
    ]
    if not waiting:
        return "idle"
    if any(m.dispatcher_last_tick_at and now - m.dispatcher_last_tick_at <= DISPATCHER_FRESH for m in waiting):
        return "running"
    return "stalled"
