"""What the HTTP app holds for its lifetime: the town's runtime plus the HTTP-only parts (auth, limits)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pluggy
import redis.asyncio as aioredis

from townhall.auth import AuthMode
from townhall.config import Town
from townhall.http.ratelimit import RequestRateLimiter
from townhall.redis_endpoint import RedisEndpoint
from townhall.registry import PluginRegistry
from townhall.runtime import Runtime
from townhall.services.town import TownServices
from townhall.store import TownStore

#: Process start, for ``/health`` uptime (reference GAP 16: upstream counted from the first probe).
PROCESS_STARTED = time.monotonic()


@dataclass
class AppContext:
    runtime: Runtime
    auth: AuthMode
    rate_limiter: RequestRateLimiter | None = None

    @property
    def town(self) -> Town:
        return self.runtime.town

    @property
    def endpoint(self) -> RedisEndpoint:
        return self.runtime.endpoint

    @property
    def redis(self) -> aioredis.Redis:
        return self.runtime.redis

    @property
    def pm(self) -> pluggy.PluginManager:
        return self.runtime.pm

    @property
    def registry(self) -> PluginRegistry:
        return self.runtime.registry

    @property
    def services(self) -> TownServices:
        return self.runtime.services

    @property
    def store(self) -> TownStore:
        return self.runtime.store

    @property
    def uptime_secs(self) -> int:
        return int(time.monotonic() - PROCESS_STARTED)
