"""A valid API key that is not cached yet, while 60 addresses flood wrong keys. ``python -m bench --only auth_flood``

Starts a private Redis and a townhall in mode ``api_key`` with keys hashed at the reference Argon2 cost
and the default rate limits. 60 loopback source addresses (real distinct peers) each present a new
wrong key 3 times a second — half without an id (the slower path, tried against every hash), half
``<configured id>.<random>`` — while one clean address presents each valid key once. Target: no 429
for a valid key and p99 < 100 ms.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path

from bench.report import Row
from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town
from townhall_auth_apikey import REFERENCE_PARAMETERS
from townhall_auth_apikey.testing import api_keys_toml, flood_while_presenting, make_key

SENDERS = 60
TARGET_P99_MS = 100.0


def rows(quick: bool = False) -> list[Row]:
    """The section of ``python -m bench``."""
    root = Path(tempfile.mkdtemp(prefix="auth-flood-"))
    (root / "redis").mkdir()
    (root / "town").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    keys = [make_key(f"svc-{n}", Scope.TOWN_READ, parameters=REFERENCE_PARAMETERS)
            for n in range(10 if quick else 40)]
    try:
        write_town(root / "town", "bench-flood", redis_url=server.url, extra=api_keys_toml(keys))
        proc = TownhallProcess(root / "town").start()
        try:
            result = asyncio.run(flood_while_presenting(proc.url, [k.id for k in keys], [k.key for k in keys],
                                                        senders=SENDERS, per_second=3.0))
        finally:
            proc.stop()
    finally:
        server.stop()
    latencies = sorted(seconds * 1000 for _, seconds in result.valid)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
    refused = sum(1 for status, _ in result.valid if status == 429)
    other = sum(1 for status, _ in result.valid if status not in (200, 429))
    flood = ", ".join(f"{status}: {n}" for status, n in sorted(result.flood_statuses.items()))
    return [Row(section=f"api_key: new valid key during a {SENDERS}-address wrong-key flood (ms)",
                name="GET /v1/status, uncached key", reference="target", reference_value=TARGET_P99_MS,
                value=p99, unit="ms", ratio=p99 / TARGET_P99_MS, target=f"p99 < {TARGET_P99_MS:.0f} ms, no 429",
                met=p99 < TARGET_P99_MS and refused == 0 and other == 0,
                detail=f"{len(latencies)} keys, p50 {p50:.1f} ms, 429 {refused}, flood answers {{{flood}}}")]
