"""Several server processes: ``[townhall] workers = 2`` against ``1``, and one rate limit for both.
``python -m bench --only scaling``

Throughput: GET /v1/status (10 agents) on two townhalls of one town and one Redis, one with one server
process and one with two, measured in alternating rounds; nothing is pinned, since two processes are
meant to use both cores (the load generator and Redis share them too, so on a 2-core machine the ratio
is bounded by what they leave). Target ≥ 1.6×.

Shared limit: a two-process townhall with limits on (per client address: burst 20, 600/min) under 16
connections, which the kernel spreads over both processes; the requests let through must be those of
one budget (burst + refill over the run), not two. Target ≤ 1.1× the budget.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from bench.load import LoadResult, LoadSpec, run_load
from bench.report import Row
from bench.throughput import measure_pair, seed_town
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town

TARGET_RATIO = 1.6
BURST, PER_MINUTE = 20, 600
LIMITS = (f"[townhall.rate_limit]\nenabled = true\nburst_size = {BURST}\nrequests_per_minute = {PER_MINUTE}\n"
          f"mutating_requests_per_minute = {PER_MINUTE}\n")


def _ok(result: LoadResult, label: str) -> None:
    bad = {s: n for s, n in result.statuses.items() if not s.startswith("2")}
    if bad or result.errors:
        raise RuntimeError(f"{label}: non-2xx responses {bad}, connection errors {result.errors}")


def rows(quick: bool = False) -> list[Row]:
    """The section of ``python -m bench``."""
    duration, rounds = (1.5, 1) if quick else (4.0, 3)
    root = Path(tempfile.mkdtemp(prefix="scaling-out-"))
    (root / "redis").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    procs: list[TownhallProcess] = []
    try:
        one, two, limited = root / "one", root / "two", root / "limited"
        for directory in (one, two, limited):
            directory.mkdir()
        write_town(one, "bench-scale", redis_url=server.url)
        write_town(two, "bench-scale", redis_url=server.url, extra="[townhall]\nworkers = 2\n")
        write_town(limited, "bench-limit", redis_url=server.url, extra="[townhall]\nworkers = 2\n" + LIMITS)
        procs = [TownhallProcess(d).start(wait=False) for d in (one, two, limited)]
        for proc in procs:
            proc.wait_healthy(90)
        single, double, shared = procs
        seed_town(single.url)
        spec_one = LoadSpec(host="127.0.0.1", port=single.port, method="GET", path="/v1/status",
                            connections=16, duration=duration)
        a, b = measure_pair(spec_one, replace(spec_one, port=double.port), rounds)
        _ok(a, "workers = 1")
        _ok(b, "workers = 2")
        ratio = b.rps / a.rps
        result = [Row(section="server processes: [townhall] workers (req/s)", name="GET /v1/status, workers = 2",
                      reference="workers = 1", reference_value=a.rps, value=b.rps, unit="/s", ratio=ratio,
                      target=f">= {TARGET_RATIO}x", met=ratio >= TARGET_RATIO,
                      detail=f"p50 {a.p50_ms:.1f}/{b.p50_ms:.1f} ms, p99 {a.p99_ms:.1f}/{b.p99_ms:.1f} ms")]
        # From the first request on (no warm-up): every answer counts against the one budget.
        limit = run_load(replace(spec_one, port=shared.port, warmup=0.0, duration=duration))
        allowed = limit.statuses.get("200", 0)
        budget = BURST + PER_MINUTE / 60 * duration
        others = {s: n for s, n in limit.statuses.items() if s not in ("200", "429")}
        result.append(Row(section="rate limit across 2 server processes (requests let through)",
                          name="GET /v1/status, 16 connections", reference="one budget", reference_value=budget,
                          value=allowed, unit="", ratio=allowed / budget, target="<= 1.1x",
                          met=allowed / budget <= 1.1 and not others and not limit.errors,
                          detail=f"burst {BURST}, {PER_MINUTE}/min, {duration:.1f} s; "
                                 f"429: {limit.statuses.get('429', 0)}, other {others}"))
        return result
    finally:
        for proc in procs:
            proc.stop()
        server.stop()
