"""Upkeep of a running townhall: index reconciliation at startup, and the sweep of dead workers' work."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import redis.exceptions

from townhall.context import AppContext

log = logging.getLogger("townhall")

RETRY_SECS = 1.0


async def reconcile_once(ctx: AppContext) -> bool:
    """Rebuild townhall's own indexes from the records; ``False`` when Redis is unreachable."""
    try:
        report = await ctx.store.reconcile()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        log.warning("index reconcile postponed, Redis unreachable: %s", exc)
        return False
    log.info("indexes reconciled: %d agents, %d tasks, %d missions", report.agents, report.tasks,
             report.missions)
    return True


async def reconcile_when_reachable(ctx: AppContext) -> None:
    """Keep trying until Redis answers (townhall serves 503s meanwhile)."""
    while not await reconcile_once(ctx):
        await asyncio.sleep(RETRY_SECS)


async def sweep_forever(ctx: AppContext) -> None:
    """Periodically put back work taken by workers whose liveness key lapsed (lists processing lists;
    streams also trims acknowledged docket entries). Redis being away only postpones a round."""
    agent = ctx.town.config.agent
    await _every(max(1.0, agent.heartbeat_secs), lambda: ctx.services.queue.sweep(agent.visibility_timeout_secs),
                 "queue sweep")


async def discover_forever(ctx: AppContext) -> None:
    """Every ``index_refresh_secs``: list agents and missions that other tools (the original ``tt``,
    the dispatcher) created since startup. A background SCAN, never on a request's path."""
    period = ctx.town.config.townhall.index_refresh_secs
    if period:
        await _every(period, ctx.store.discover, "index refresh")


async def _every(period: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``job`` every ``period`` seconds forever; Redis being away only postpones a round."""
    while True:
        await asyncio.sleep(period)
        try:
            await job()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.debug("%s postponed: %s", what, exc)
