"""One town's services, wired once and shared by the REST app, the CLI and the worker."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from townhall.config import Town
from townhall.launchers import Launcher
from townhall.plugins import PluginRegistry
from townhall.queues import QueueBackend
from townhall.store import TownStore


@dataclass
class TownServices:
    town: Town
    store: TownStore
    queue: QueueBackend
    launcher: Launcher


def open_town_services(town: Town, redis: aioredis.Redis, registry: PluginRegistry) -> TownServices:
    """Build the services for ``town``; unknown queue backend or launcher names raise
    :class:`townhall.registry.UnknownPluginName`."""
    store = TownStore(redis, town.name)
    queue = registry.queue_backends.get(town.config.queue_backend_name).factory(store)
    launcher = registry.launchers.get(town.config.agent.launcher).factory(town.config)
    return TownServices(town=town, store=store, queue=queue, launcher=launcher)
