"""Upkeep of a running townhall: index reconciliation at startup, and the periodic background jobs
(the sweep of dead workers' work, the discovery of records other tools wrote, the scaling watch that
announces a changed recommendation on the event stream)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

import redis.exceptions

from townhall.services.scaling import ScalingUnavailable, scaling_signal
from townhall.services.town import TownServices

log = logging.getLogger("townhall")

RETRY_SECS = 1.0


class Upkeep:
    def __init__(self, services: TownServices) -> None:
        self.services = services
        self.town = services.town
        self.store = services.store

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Reconcile before serving, so no request races the rebuild (if Redis is down, serve 503s and
        reconcile as soon as it answers); run the periodic jobs until the block ends."""
        jobs = [] if await self.reconcile_once() else [self.reconcile_when_reachable()]
        jobs += [self.sweep_forever(), self.discover_forever(), self.watch_scaling_forever()]
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    async def reconcile_once(self) -> bool:
        """Rebuild townhall's own indexes from the records; ``False`` when Redis is unreachable."""
        try:
            report = await self.store.reconcile()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            log.warning("index reconcile postponed, Redis unreachable: %s", exc)
            return False
        log.info("indexes reconciled: %d agents, %d tasks, %d missions", report.agents, report.tasks,
                 report.missions)
        return True

    async def reconcile_when_reachable(self) -> None:
        """Keep trying until Redis answers (townhall serves 503s meanwhile)."""
        while not await self.reconcile_once():
            await asyncio.sleep(RETRY_SECS)

    async def sweep_forever(self) -> None:
        """Every heartbeat period (at least 1 s): declare lost the workers whose heartbeat is older than
        ``stale_after_secs`` and rescue their work (:class:`townhall.services.rescue.WorkRescue`), then
        put back work held by workers whose liveness key lapsed (streams also trims acknowledged
        docket entries)."""
        await _every(max(1.0, self.town.config.agent.heartbeat_secs), self.sweep_once, "sweep")

    async def sweep_once(self) -> None:
        await self.services.rescue.sweep()
        await self.services.queue.sweep(self.town.config.agent.visibility_timeout_secs)

    async def watch_scaling_forever(self) -> None:
        """Every heartbeat period (at least 1 s): compute the scaling signal, so that a change of
        recommendation reaches the event stream even when no autoscaler polls ``/api/scaling``."""
        await _every(max(1.0, self.town.config.agent.heartbeat_secs), self.watch_scaling_once, "scaling watch")

    async def watch_scaling_once(self) -> None:
        config = self.town.config
        try:
            await scaling_signal(self.store, self.services.queue, town=self.town.name, max_agents=config.max_agents,
                                 idle_timeout_secs=config.agent.idle_timeout_secs,
                                 stale_after_secs=config.agent.stale_after_secs)
        except ScalingUnavailable as exc:
            log.debug("scaling watch postponed: %s", exc)

    async def discover_forever(self) -> None:
        """Every ``index_refresh_secs``: list agents and missions that other tools (the original ``tt``,
        the dispatcher) created since startup. A background SCAN, never on a request's path."""
        period = self.town.config.townhall.index_refresh_secs
        if period:
            await _every(period, self.store.discover, "index refresh")


async def _every(period: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``job`` every ``period`` seconds forever; Redis being away only postpones a round."""
    while True:
        await asyncio.sleep(period)
        try:
            await job()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.debug("%s postponed: %s", what, exc)
