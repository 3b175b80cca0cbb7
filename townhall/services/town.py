"""One town's services, wired once and shared by the REST app, the CLI and the worker."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from townhall.config import Town
from townhall.launchers import Launcher
from townhall.plugins import PluginRegistry
from townhall.queues import QueueBackend
from townhall.services.agents import AgentService
from townhall.services.messages import MessageService
from townhall.services.tasks import TaskService
from townhall.store import TownStore


@dataclass
class TownServices:
    town: Town
    store: TownStore
    queue: QueueBackend
    launcher: Launcher
    agents: AgentService = field(init=False)
    tasks: TaskService = field(init=False)
    messages: MessageService = field(init=False)

    def __post_init__(self) -> None:
        self.agents = AgentService(self.town, self.store, self.launcher)
        self.tasks = TaskService(self.store, self.agents)
        self.messages = MessageService(self.store, self.agents)


def open_town_services(town: Town, redis: aioredis.Redis, registry: PluginRegistry) -> TownServices:
    """Build the services for ``town``; unknown queue backend or launcher names raise
    :class:`townhall.registry.UnknownPluginName`."""
    store = TownStore(redis, town.name)
    queue = registry.queue_backends.get(town.config.queue_backend_name).factory(store)
    launcher = registry.launchers.get(town.config.agent.launcher).factory(town.config)
    return TownServices(town=town, store=store, queue=queue, launcher=launcher)
