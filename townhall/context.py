"""What a running townhall holds for its lifetime: config, Redis client, plugins, services."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pluggy
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from townhall.auth import AuthMode
from townhall.config import Town
from townhall.http.ratelimit import RequestRateLimiter
from townhall.plugins import PluginRegistry
from townhall.redis_endpoint import RedisEndpoint
from townhall.services.town import TownServices
from townhall.store import TownStore

#: Process start, for ``/health`` uptime (reference GAP 16: upstream counted from the first probe).
PROCESS_STARTED = time.monotonic()


def make_redis_client(url: str, request_timeout_ms: int) -> aioredis.Redis:
    """The request-path pool: fail fast when Redis is gone so callers get a prompt 503."""
    timeout = min(request_timeout_ms / 1000, 10.0)
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=min(2.0, timeout),
        socket_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        max_connections=256,
        health_check_interval=30,
    )


@dataclass
class AppContext:
    town: Town
    endpoint: RedisEndpoint
    redis: aioredis.Redis
    pm: pluggy.PluginManager
    registry: PluginRegistry
    auth: AuthMode
    services: TownServices
    rate_limiter: RequestRateLimiter | None = None

    @property
    def store(self) -> TownStore:
        return self.services.store

    @property
    def uptime_secs(self) -> int:
        return int(time.monotonic() - PROCESS_STARTED)
