"""Token-bucket rate limits (``[townhall.rate_limit]``; defaults from reference §6.7).

Buckets are kept in this process's memory (a bounded LRU map, so a caller cycling identities cannot
grow it without limit). Several townhall replicas each enforce their own limits.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException

from townhall.auth import Principal
from townhall.config import ConfigError, RateLimitConfig

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BUCKETS = 100_000


class TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, capacity: float, now: float) -> None:
        self.tokens = capacity
        self.updated = now


class RateLimitExceeded(TooManyRequestsException):
    pass


class BucketTable:
    def __init__(self, capacity: int, per_minute: int) -> None:
        self.capacity = float(capacity)
        self.rate = per_minute / 60.0
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.capacity, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def take(self, key: str, now: float) -> float:
        """Take one token; return 0 on success, else the seconds until one is available."""
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def wait_time(self, key: str, now: float) -> float:
        bucket = self._bucket(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate


class RequestRateLimiter:
    """Separate read and write buckets per caller; per client address, one for failed logins and one
    for public routes."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.reads = BucketTable(config.burst_size, config.requests_per_minute)
        self.writes = BucketTable(config.burst_size, config.mutating_requests_per_minute)
        self.auth_failures = BucketTable(config.burst_size, config.requests_per_minute)
        self.public = BucketTable(config.public_burst_size, config.public_requests_per_minute)
        self.trusted = [_network(p) for p in config.trusted_proxies]

    async def check(self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
        key = f"principal:{principal.id}" if principal.mode != "none" else f"ip:{self.client_address(connection)}"
        table = self.writes if connection.scope["method"] in MUTATING else self.reads
        _raise_if_waiting(table.take(key, time.monotonic()))

    def check_public(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Spend one token of the client address's bucket for public routes (probes, metrics, scaling)."""
        _raise_if_waiting(self.public.take(self.client_address(connection), time.monotonic()))

    def check_auth_allowed(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Refuse early a client that keeps sending bad credentials (no verification work for it)."""
        _raise_if_waiting(self.auth_failures.wait_time(self.client_address(connection), time.monotonic()))

    def record_auth_failure(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        self.auth_failures.take(self.client_address(connection), time.monotonic())

    def client_address(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The peer, or — only when the peer is a trusted proxy — the nearest untrusted hop of
        ``X-Forwarded-For``.

        Every ``X-Forwarded-For`` line counts, in order, as one list (RFC 9110 §5.3: repeated lines are
        one comma-separated value): a proxy that appends its own line, like HAProxy's ``option
        forwardfor``, leaves the client's line first, and that line is the client's to write. Walking
        from the right through the trusted proxies finds the address the last trusted proxy saw.
        ``Forwarded`` (RFC 7239) is not read.
        """
        peer = connection.client.host if connection.client else "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for line in connection.headers.getall("x-forwarded-for", [])
                for hop in line.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ConfigError(
            f"townhall: tinytown.toml: townhall.rate_limit.trusted_proxies: {value!r} is not an IP "
            "address or network"
        ) from None


def _raise_if_waiting(wait: float) -> None:
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimitExceeded(
            detail=f"Rate limit exceeded; retry in {seconds} s", headers={"Retry-After": str(seconds)}
        )


def rate_limit_enabled(config: RateLimitConfig, auth_mode: str) -> bool:
    return config.enabled if config.enabled is not None else auth_mode != "none"
