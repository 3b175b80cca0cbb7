"""Presented key → configured key, paying for Argon2 at most once per key while it is in use.

Each presented key is reduced to a keyed BLAKE2b digest (BLAKE2's MAC mode, RFC 7693; a third of what
HMAC-SHA256 costs through OpenSSL 3, on every authenticated request) under a secret drawn at
construction (once per process in practice). Only digests are kept: a memory dump holds no usable key, and the digests cannot
be precomputed. Known-good digests map to their key in a bounded LRU table (no timer: a key in use stays
verified); known-bad digests sit in a bounded, expiring cache, so replaying a wrong key costs no Argon2.

A key of the form ``<key id>.<secret>`` (what ``tt auth gen-key`` issues) names the one hash to check; a
dotted key whose id is not configured is refused without any Argon2 work. Only a key without a dot
(the original's form) is tried against every configured hash — the slower path.

On a miss, the verification runs in a worker thread (never on the event loop) through a small
scheduler: at most ``threads`` run at once (one Argon2 verification is the unit of work: a key tried
against several hashes goes back into the queue after each), and the waiting ones are served in order of how many wrong
keys their sender presented recently (then the shortest job first), so a flood of wrong keys cannot push a sender with a clean record
to the back of the queue. When the queue is full, the job of the worst sender waiting is refused (or
the new one, if it is no better), which counts against that sender like a wrong key; concurrent requests carrying the same unseen key share one job.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from typing import Callable, Protocol

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache, TTLCache

from townhall.auth import AuthBusy, InvalidCredentials

from townhall_auth_apikey.keyset import ConfiguredKey

#: Separates the key id from the secret in keys issued by ``tt auth gen-key``.
KEY_ID_SEPARATOR = "."


class TooManyVerifications(AuthBusy):
    """Too many unseen keys are being verified already; the core answers 429 with ``Retry-After``."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("Too many authentication attempts in progress, retry later", retry_after)


class PasswordVerifier(Protocol):
    """The one method of argon2-cffi's ``PasswordHasher`` used here (tests wrap it to count calls)."""

    def verify(self, hash: str, password: str) -> bool: ...


class _Job:
    """One pending verification: who asked (their recent failures rank it) and where the verdict goes."""

    __slots__ = ("rank", "seq", "digest", "presented", "candidates", "sender", "verdict")

    def __init__(self, rank: int, seq: int, digest: bytes, presented: str,
                 candidates: list[ConfiguredKey], sender: str | None) -> None:
        self.rank, self.seq, self.digest, self.presented = rank, seq, digest, presented
        self.candidates, self.sender = candidates, sender
        self.verdict: asyncio.Future[ConfiguredKey | None] = asyncio.get_running_loop().create_future()
        # Every waiter may have gone (disconnected): the verdict is then nobody's, not an error to report.
        self.verdict.add_done_callback(lambda f: f.cancelled() or f.exception())

    def order(self) -> tuple[int, int, int]:
        """Clean senders first, then the job with the fewest verifications left, then the oldest."""
        return self.rank, len(self.candidates), self.seq


class KeyVerifier:
    """Matches a presented key against the configured keys, with the caches and scheduler described above."""

    def __init__(
        self,
        keys: list[ConfiguredKey],
        *,
        hasher: PasswordVerifier | None = None,
        positive_size: int = 1024,
        negative_size: int = 4096,
        negative_ttl: float = 60.0,
        threads: int | None = None,
        max_pending: int | None = None,
        sender_memory: float = 300.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = list(keys)
        self._by_id = {key.id: key for key in self.keys}
        # Verification honours the type and parameters inside each PHC string, not the hasher's own.
        self._hasher = hasher or PasswordHasher()
        self._secret = os.urandom(32)
        self._known: LRUCache[bytes, ConfiguredKey] = LRUCache(positive_size)
        self._rejected: TTLCache[bytes, bool] = TTLCache(negative_size, negative_ttl, timer=timer)
        # Wrong keys per sender recently (bounded; forgotten after `sender_memory` s without one).
        self._failures: TTLCache[str, int] = TTLCache(negative_size, sender_memory, timer=timer)
        self._threads = threads or _usable_cpus()
        self._limiter = anyio.CapacityLimiter(self._threads)
        self._max_pending = max_pending if max_pending is not None else 8 * self._threads
        self._pending: dict[bytes, _Job] = {}
        self._waiting: list[_Job] = []
        self._running = 0
        self._seq = itertools.count()

    async def match(self, presented: str, sender: str | None = None) -> ConfiguredKey:
        """The configured key equal to ``presented``; raises ``InvalidCredentials`` otherwise.

        ``sender`` (the client address) ranks the verification when the queue is busy.
        """
        digest = hashlib.blake2b(presented.encode("utf-8"), key=self._secret, digest_size=32).digest()
        known = self._known.get(digest)
        if known is not None:
            return known
        if digest in self._rejected or not presented:
            raise InvalidCredentials("Invalid credentials")
        job = self._pending.get(digest)
        if job is None:
            candidates = self._candidates(presented)
            if not candidates:
                self._failed(sender)
                raise InvalidCredentials("Invalid credentials")
            job = self._submit(digest, presented, candidates, sender)
        # Shielded: a client that disconnects must not cancel the verification others are waiting on.
        found = await asyncio.shield(job.verdict)
        if found is None:
            raise InvalidCredentials("Invalid credentials")
        return found

    def _candidates(self, presented: str) -> list[ConfiguredKey]:
        key_id, separator, _secret = presented.rpartition(KEY_ID_SEPARATOR)
        if not separator:
            return self.keys
        key = self._by_id.get(key_id)
        return [key] if key is not None else []

    def _submit(self, digest: bytes, presented: str, candidates: list[ConfiguredKey], sender: str | None) -> _Job:
        rank = self._failures.get(sender, 0) if sender else 0
        job = _Job(rank, next(self._seq), digest, presented, list(candidates), sender)
        if len(self._pending) >= self._max_pending:
            worst = max(self._waiting, key=_Job.order, default=None)
            if worst is None or worst.order() <= job.order():
                self._failed(sender)
                raise TooManyVerifications()
            self._waiting.remove(worst)
            self._drop(worst)
            self._failed(worst.sender)
            worst.verdict.set_exception(TooManyVerifications())
        self._pending[digest] = job
        if self._running < self._threads:
            self._start(job)
        else:
            self._waiting.append(job)
        return job

    def _start(self, job: _Job) -> None:
        self._running += 1
        asyncio.ensure_future(self._run(job))

    async def _run(self, job: _Job) -> None:
        """One Argon2 verification of ``job``; a job with more candidates goes back into the queue, so
        a better-ranked job never waits for more than one verification."""
        finished = True
        try:
            key = job.candidates.pop(0)
            matched = await anyio.to_thread.run_sync(self._matches, key, job.presented, limiter=self._limiter)
        except BaseException as exc:  # noqa: BLE001 - the waiters get it; the scheduler must go on
            job.verdict.set_exception(exc)
        else:
            if matched:
                self._known[job.digest] = key
                if job.sender:
                    self._failures.pop(job.sender, None)
                job.verdict.set_result(key)
            elif job.candidates:
                finished = False
                self._waiting.append(job)
            else:
                self._rejected[job.digest] = True
                self._failed(job.sender)
                job.verdict.set_result(None)
        finally:
            if finished:
                self._drop(job)
            self._running -= 1
            if self._waiting:
                best = min(self._waiting, key=_Job.order)
                self._waiting.remove(best)
                self._start(best)

    def _drop(self, job: _Job) -> None:
        if self._pending.get(job.digest) is job:
            del self._pending[job.digest]

    def _failed(self, sender: str | None) -> None:
        if sender:
            self._failures[sender] = self._failures.get(sender, 0) + 1

    def _matches(self, key: ConfiguredKey, presented: str) -> bool:
        try:
            return self._hasher.verify(key.hash, presented)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def cache_sizes(self) -> tuple[int, int]:
        """(known-good, known-bad) entries currently held; both are bounded."""
        return len(self._known), len(self._rejected)


def _usable_cpus() -> int:
    """One verification thread per usable CPU but one (kept for the event loop), at least one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 2
    return max(1, cpus - 1)
