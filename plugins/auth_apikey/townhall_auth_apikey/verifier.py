"""Presented key → configured key, paying for Argon2 at most once per key and per cache period.

Each presented key is reduced to an HMAC-SHA256 digest under a secret drawn at construction (once per
process in practice). Only digests are kept: a memory dump holds no usable key, and the digests cannot
be precomputed. Known-good digests map to their key in a bounded, expiring cache; known-bad digests sit
in a second bounded, expiring cache, so replaying a wrong key costs no Argon2 either. On a miss, the
Argon2 verification runs in a worker thread behind a dedicated limiter (never on the event loop), and
concurrent requests carrying the same unseen key share one verification. When too many verifications
are already queued, new unseen keys are refused at once instead of piling up CPU work.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from typing import Callable, Protocol

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache

from townhall.auth import AuthBusy, InvalidCredentials

from townhall_auth_apikey.keyset import ConfiguredKey


class TooManyVerifications(AuthBusy):
    """Too many unseen keys are being verified already; the core answers 429 with ``Retry-After``."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("Too many authentication attempts in progress, retry later", retry_after)


class PasswordVerifier(Protocol):
    """The one method of argon2-cffi's ``PasswordHasher`` used here (tests wrap it to count calls)."""

    def verify(self, hash: str, password: str) -> bool: ...


class KeyVerifier:
    """Matches a presented key against the configured keys, with the caches described above."""

    def __init__(
        self,
        keys: list[ConfiguredKey],
        *,
        hasher: PasswordVerifier | None = None,
        positive_size: int = 1024,
        positive_ttl: float = 600.0,
        negative_size: int = 4096,
        negative_ttl: float = 60.0,
        threads: int | None = None,
        max_pending: int | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = list(keys)
        # Verification honours the type and parameters inside each PHC string, not the hasher's own.
        self._hasher = hasher or PasswordHasher()
        self._secret = os.urandom(32)
        self._known: TTLCache[bytes, ConfiguredKey] = TTLCache(positive_size, positive_ttl, timer=timer)
        self._rejected: TTLCache[bytes, bool] = TTLCache(negative_size, negative_ttl, timer=timer)
        threads = threads or os.cpu_count() or 2
        self._limiter = anyio.CapacityLimiter(threads)
        self._max_pending = max_pending if max_pending is not None else 2 * threads
        self._pending: dict[bytes, asyncio.Task[ConfiguredKey | None]] = {}

    async def match(self, presented: str) -> ConfiguredKey:
        """The configured key equal to ``presented``; raises ``InvalidCredentials`` otherwise."""
        digest = hmac.new(self._secret, presented.encode("utf-8"), hashlib.sha256).digest()
        known = self._known.get(digest)
        if known is not None:
            return known
        if digest in self._rejected or not presented:
            raise InvalidCredentials("Invalid credentials")
        task = self._pending.get(digest)
        if task is None:
            if len(self._pending) >= self._max_pending:
                raise TooManyVerifications()
            task = asyncio.ensure_future(self._verify(digest, presented))
            self._pending[digest] = task
            task.add_done_callback(lambda _t, d=digest: self._pending.pop(d, None))
        # Shielded: a client that disconnects must not cancel the verification others are waiting on.
        found = await asyncio.shield(task)
        if found is None:
            raise InvalidCredentials("Invalid credentials")
        return found

    async def _verify(self, digest: bytes, presented: str) -> ConfiguredKey | None:
        found = await anyio.to_thread.run_sync(self._find, presented, limiter=self._limiter)
        if found is None:
            self._rejected[digest] = True
        else:
            self._known[digest] = found
        return found

    def _find(self, presented: str) -> ConfiguredKey | None:
        for key in self.keys:
            try:
                if self._hasher.verify(key.hash, presented):
                    return key
            except (VerificationError, InvalidHashError):
                continue
        return None

    @property
    def cache_sizes(self) -> tuple[int, int]:
        """(known-good, known-bad) entries currently held; both are bounded."""
        return len(self._known), len(self._rejected)
