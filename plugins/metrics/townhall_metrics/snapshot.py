"""One scrape's view of the town, read from Redis without touching finished task records."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, TypeVar

import msgspec
import redis.exceptions

from townhall.services.pending import pending_in
from townhall.store import TownStore

T = TypeVar("T")


class MetricsUnavailable(Exception):
    """The town could not be read; the message is the reference's detail (``Redis ping failed: …``).
    ``redis_up``: Redis answered the PING (a later read failed)."""

    def __init__(self, detail: str, *, redis_up: bool = True) -> None:
        super().__init__(detail)
        self.redis_up = redis_up


class TownSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool = False
    redis_up: bool = False
    #: Agent count per lowercase state name, only states that have agents.
    agents_by_state: dict[str, int] = {}
    backlog: int = 0
    assigned_pending: int = 0
    completed_total: int = 0
    missions_active: int = 0
    redis_latency_seconds: float = 0.0
    urgent_messages: int = 0

    @property
    def tasks_pending(self) -> int:
        return self.backlog + self.assigned_pending


#: What ``/metrics`` reports when the town cannot be read (reference §9.3, 503 variant).
UNAVAILABLE = TownSnapshot()


async def read_town_snapshot(store: TownStore) -> TownSnapshot:
    """PING (timed), then counts from indexes and counters in a few concurrent round trips.

    The completed total is the store's counter, so a town with a long history costs what an empty one
    does. Raises :class:`MetricsUnavailable` with the failing step.
    """
    started = time.perf_counter()
    try:
        reply = await store.redis.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise MetricsUnavailable(f"Redis ping failed: {exc}", redis_up=False) from exc
    latency = time.perf_counter() - started
    if reply is not True:
        raise MetricsUnavailable(f"Unexpected Redis PING response: {reply}", redis_up=False)
    census, backlog, completed, missions = await asyncio.gather(
        # Agents by state, urgent messages, inbox heads: one script (store/overview.py).
        _step("Failed to list pending tasks", store.overview.census()),
        _step("Failed to read backlog length", store.backlog.length()),
        _step("Failed to list tasks", store.tasks.completed_total()),
        _step("Failed to list active missions", store.missions.active_ids()),
    )
    pending = await _step("Failed to list pending tasks", pending_in(store, census.inbox_heads))
    return TownSnapshot(
        ready=True,
        redis_up=True,
        agents_by_state={state.value: n for state, n in sorted(census.by_state.items(), key=lambda s: s[0].value)},
        backlog=backlog,
        assigned_pending=len(pending),
        completed_total=completed,
        missions_active=len(missions),
        redis_latency_seconds=latency,
        urgent_messages=census.urgent,
    )


async def _step(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except (redis.exceptions.RedisError, OSError) as exc:
        raise MetricsUnavailable(f"{what}: {exc}") from exc
