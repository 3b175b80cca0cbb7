"""The composition root: everything one process of a town needs, built in one place and closed once.

``townhall rest``, every ``tt`` command, the worker, the OpenAPI export and the tests all get their Redis
clients, queue backend, launcher and services here, from a :class:`townhall.config.Town` and the loaded
plugins (:func:`townhall.plugins.load_plugins`, called once per process by the caller). Nothing below this
module builds a client or looks a plugin up by name.

This module never imports the plugin manager (``townhall.plugins`` → ``hookspecs`` mentions the types
built here), which keeps the import graph free of cycles.
"""

from __future__ import annotations

import asyncio
import enum
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from townhall.config import Town
from townhall.redis_endpoint import (
    RedisEndpoint,
    client_name,
    configured_endpoint,
    release_private_server,
    resolve_endpoint,
)
from townhall.redis_clients import async_client, close_async_client
from townhall.registry import LoadedPlugins, PluginRegistry
from townhall.services.event_feed import BLOCK_MS, EventFeed
from townhall.services.town import TownServices
from townhall.store import Durability, TownStore


class Role(enum.Enum):
    """Who the runtime is for; it decides how the Redis clients wait."""

    #: townhall serving requests: fail fast when Redis is gone, so callers get a prompt 503 (plus a
    #: client for the event feed's blocking read).
    SERVER = "server"
    #: a ``tt`` command: one short conversation with Redis.
    COMMAND = "command"
    #: an agent worker: also a client for blocking reads, which hold their connection for the wait.
    WORKER = "worker"


def redis_client(endpoint: RedisEndpoint, role: Role, *, request_timeout_ms: int = 10_000,
                 name: str | None = None) -> aioredis.Redis:
    """The client a process of ``role`` uses for ordinary calls; ``name``: its connections' name."""
    if role is Role.SERVER:
        timeout = min(request_timeout_ms / 1000, 10.0)
        return async_client(
            endpoint,
            socket_connect_timeout=min(2.0, timeout),
            socket_timeout=timeout,
            watched=True,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
            max_connections=256,
            health_check_interval=30,
            client_name=name,
        )
    return async_client(endpoint, socket_connect_timeout=2.0, socket_timeout=10.0, health_check_interval=30,
                        client_name=name)


def blocking_redis_client(endpoint: RedisEndpoint, name: str | None = None,
                          socket_timeout: float | None = None) -> aioredis.Redis:
    """A client for ``BLMOVE``/``XREADGROUP BLOCK``/``XREAD BLOCK``: no socket timeout (or one longer
    than the wait), since redis-py's default 5 s would cut every longer wait (ecosystem notes §3)."""
    return async_client(endpoint, socket_connect_timeout=2.0, socket_timeout=socket_timeout,
                        health_check_interval=30, client_name=name)


def build_services(town: Town, redis: aioredis.Redis, registry: PluginRegistry) -> TownServices:
    """The town's services on ``redis``, with the queue backend and launcher the config names; unknown
    names raise :class:`townhall.registry.UnknownPluginName`."""
    cfg = town.config.redis
    store = TownStore(redis, town.name, Durability(replicas=cfg.wait_replicas, timeout_ms=cfg.wait_timeout_ms),
                      event_retention=town.config.townhall.events.retention)
    queue = registry.queue_backends.get(town.config.queue_backend_name).factory(store)
    launcher = registry.launchers.get(town.config.agent.launcher).factory(town.config)
    return TownServices(town=town, store=store, queue=queue, launcher=launcher)


@dataclass
class Runtime:
    """One town as seen by one process: config, plugins, Redis clients and services."""

    town: Town
    endpoint: RedisEndpoint
    plugins: LoadedPlugins
    redis: aioredis.Redis
    services: TownServices
    #: For :attr:`Role.WORKER` and :attr:`Role.SERVER`: the client for blocking reads.
    blocking: aioredis.Redis | None = None
    _feed: EventFeed | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> TownStore:
        return self.services.store

    @property
    def feed(self) -> EventFeed:
        """This process's one reader of the town event stream, fanned out to its subscribers (built on
        first use; needs the blocking client)."""
        if self._feed is None:
            if self.blocking is None:
                raise RuntimeError("the event feed needs a runtime with a blocking client (server or worker role)")
            self._feed = EventFeed(self.store, self.blocking, buffer=self.town.config.townhall.events.subscriber_buffer)
        return self._feed

    def end_streams(self) -> None:
        """End every open stream of this process, event streams and followed logs (shutdown begins)."""
        self.services.logs.close()
        if self._feed is not None:
            self._feed.close()

    async def aclose(self) -> None:
        if self._feed is not None:
            await self._feed.aclose()
        if self.blocking is not None:
            await close_async_client(self.blocking)
        await close_async_client(self.redis)


def build_runtime(town: Town, plugins: LoadedPlugins, *, role: Role = Role.SERVER,
                  endpoint: RedisEndpoint | None = None) -> Runtime:
    """Build without touching Redis (clients connect lazily), so a server can start while Redis is down.
    ``endpoint`` defaults to the configured one; nothing is started here."""
    endpoint = endpoint or configured_endpoint(town)
    # On the private server the town's processes name their connections, so that the last one out
    # can tell whether anybody still uses it (redis_endpoint.release_private_server).
    name = client_name() if endpoint.private else None
    redis = redis_client(endpoint, role, request_timeout_ms=town.config.townhall.request_timeout_ms, name=name)
    return Runtime(
        town=town,
        endpoint=endpoint,
        plugins=plugins,
        redis=redis,
        services=build_services(town, redis, plugins.registry),
        blocking=blocking_redis_client(endpoint, name) if role is Role.WORKER
        # The server's event reader waits BLOCK_MS at a time; a longer timeout still catches a lost Redis.
        else blocking_redis_client(endpoint, name, socket_timeout=BLOCK_MS / 1000 + 5) if role is Role.SERVER
        else None,
    )


@asynccontextmanager
async def open_runtime(town: Town, plugins: LoadedPlugins, *, role: Role = Role.COMMAND,
                       endpoint: RedisEndpoint | None = None) -> AsyncIterator[Runtime]:
    """:func:`build_runtime` for a command or a worker, closed on exit. Without ``endpoint`` the town's
    Redis is found, and its private server started when nothing answers; on exit the private server
    is stopped unless another process of the town still uses it (no command leaves a server behind
    that nothing would stop)."""
    if endpoint is None:
        endpoint, _ = resolve_endpoint(town)
    runtime = build_runtime(town, plugins, role=role, endpoint=endpoint)
    try:
        yield runtime
    finally:
        await runtime.aclose()
        if endpoint.private:
            await asyncio.to_thread(release_private_server, endpoint)
