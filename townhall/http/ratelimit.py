"""Token-bucket rate limits (``[townhall.rate_limit]``; defaults from reference §6.7).

The read, write and failed-login buckets live in Redis (:class:`townhall.store.limits.RateLimitStore`),
so every process and replica of a town spends one budget: one script call per limited request, none
when limits are off. Two things stay in this process's memory, in bounded LRU maps (a caller cycling
identities cannot grow them without limit):

* the public routes' bucket per address (probes, ``/metrics``, ``/api/scaling``): a flood guard that
  must work while Redis is down, so ``/health`` never waits for Redis; each process has its own;
* what this process learnt from the shared failed-login bucket (an address is refused until the time
  Redis named), so a client guessing keys is refused before any verification work and without a round
  trip. While Redis is unreachable failures are counted here instead.
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
from townhall.domain_errors import REDIS_OUTAGE_ERRORS
from townhall.store.limits import Bucket, RateLimitStore

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
    """Separate read and write buckets per caller and one for failed logins per client address, shared
    through Redis; one in-process bucket per client address for public routes."""

    def __init__(self, config: RateLimitConfig, store: RateLimitStore) -> None:
        self.config = config
        self.store = store
        self.public = BucketTable(config.public_burst_size, config.public_requests_per_minute)
        #: Only while Redis is unreachable: the failed logins of this process.
        self.local_auth_failures = BucketTable(config.burst_size, config.requests_per_minute)
        self._refused_until: OrderedDict[str, float] = OrderedDict()
        self.trusted = [_network(p) for p in config.trusted_proxies]

    async def check(self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
        """Spend a token of the caller's read or write bucket, unless the client address's failed-login
        bucket is empty (then it is refused as a guessing client is, whatever its key): one round trip.
        A Redis outage raises redis-py's error, which the app answers with 503 as it would the route's
        own reads."""
        address = self.client_address(connection)
        who = f"principal:{principal.id}" if principal.mode != "none" else f"ip:{address}"
        limits = self.config
        # A websocket's opening handshake (no "method" in its scope) is a GET: a read.
        if connection.scope.get("method", "GET") in MUTATING:
            bucket = Bucket("writes", who, limits.burst_size, limits.mutating_requests_per_minute)
        else:
            bucket = Bucket("reads", who, limits.burst_size, limits.requests_per_minute)
        answer = await self.store.take(bucket, unless_empty=self._auth_bucket(address))
        if not answer.taken:
            _raise_if_waiting(answer.wait_secs)

    def check_public(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Spend one token of the client address's bucket for public routes (probes, metrics, scaling)."""
        _raise_if_waiting(self.public.take(self.client_address(connection), time.monotonic()))

    def check_auth_allowed(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Refuse early a client that keeps sending bad credentials (no verification work for it, and no
        round trip: the refusal is what the last recorded failure answered)."""
        address = self.client_address(connection)
        until = self._refused_until.get(address)
        if until is None:
            return
        wait = until - time.monotonic()
        if wait <= 0:
            del self._refused_until[address]
            return
        _raise_if_waiting(wait)

    async def record_auth_failure(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Spend a token of the address's failed-login bucket; once it is empty, refuse the address here
        until the bucket holds a token again. A failure with no token left (another process let it
        through before learning of the empty bucket) is answered 429 rather than 401, like every other
        request from the address, so that the answer tells nothing about the credentials."""
        address = self.client_address(connection)
        now = time.monotonic()
        try:
            answer = await self.store.take(self._auth_bucket(address))
            taken, wait = answer.taken, answer.wait_secs
        except REDIS_OUTAGE_ERRORS:
            # The request is refused anyway; the count must not be lost with Redis.
            taken = self.local_auth_failures.take(address, now) == 0
            wait = self.local_auth_failures.wait_time(address, now)
        if wait > 0:
            self._refused_until[address] = now + wait
            self._refused_until.move_to_end(address)
            if len(self._refused_until) > MAX_BUCKETS:
                self._refused_until.popitem(last=False)
        if not taken:
            _raise_if_waiting(max(wait, 1.0))

    def _auth_bucket(self, address: str) -> Bucket:
        return Bucket("auth", f"ip:{address}", self.config.burst_size, self.config.requests_per_minute)

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
