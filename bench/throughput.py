"""Townhall against the bare baseline, and api_key against no auth, under the same load, in one run.

Both servers (and Redis) are pinned to one core, the load generator to the other; the two servers are
measured in alternating rounds so machine noise hits both alike.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import httpx
import redis
import redis.asyncio as aioredis

from bench.load import LoadResult, LoadSpec, run_load
from bench.report import Row
from bench.rtt import counting_round_trips
from townhall.domain import AgentState, TaskState
from townhall.keys import TownKeys
from townhall.store import AgentPatch
from townhall.testing.process import TownhallProcess, free_port
from townhall.testing.seed import TownSeed
from townhall.testing.towns import write_town

AGENTS = 10
MANY_AGENTS = 1000
BACKLOG = 20
#: townhall ÷ the baseline making the same Redis calls, every route.
TARGET = 0.85
TAIL_CONNECTIONS = 64
TAIL_TARGET = 3.0
#: townhall ÷ baseline at 1,000 agents against the same at 10: "no worse", less the run-to-run noise of
#: a ratio on this shared machine (docs/performance.md).
SIZE_TARGET = 0.95
METRICS_TARGET_MS = 20.0
SERVER_CPU, LOAD_CPU = (0, 1) if (os.cpu_count() or 1) > 1 else (None, None)


def pin(pid: int) -> None:
    if SERVER_CPU is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {SERVER_CPU})


class Route:
    def __init__(self, label: str, method: str, path: str, body: bytes = b"", *, min_rtt: int):
        #: ``min_rtt``: the fewest Redis round trips the answer can take (why: docs/performance.md).
        self.label, self.method, self.path, self.body, self.min_rtt = label, method, path, body, min_rtt


ROUTES = [
    Route("GET /health", "GET", "/health", min_rtt=0),
    Route("GET /v1/status (10 agents)", "GET", "/v1/status", min_rtt=1),
    Route("GET /v1/agents (10 agents)", "GET", "/v1/agents", min_rtt=1),
    Route("GET /v1/backlog", "GET", "/v1/backlog", min_rtt=1),
    Route("POST /v1/tasks/assign", "POST", "/v1/tasks/assign", b'{"agent":"agent-3","task":"bench"}', min_rtt=2),
    Route("POST /v1/backlog", "POST", "/v1/backlog", b'{"description":"bench task"}', min_rtt=1),
]
SIZE_ROUTES = [r for r in ROUTES if r.path in ("/v1/status", "/v1/agents")]


def seed_town(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(AGENTS):
            http.post("/v1/agents", json={"name": f"agent-{i}", "cli": "claude"}).raise_for_status()
        for i in range(BACKLOG):
            http.post("/v1/backlog", json={"description": f"seed {i}"}).raise_for_status()


def count_round_trips(town_dir: Path, redis_url: str, routes: list[Route]) -> dict[str, tuple[int, int]]:
    """Round trips per route of townhall and of the baseline, measured on in-process apps over the same
    town: ``{label: (townhall, baseline)}``."""
    from litestar.testing import AsyncTestClient

    from bench.baseline import build
    from townhall.app import create_app
    from townhall.config import load_town
    from townhall.plugins import load_plugins
    from townhall.runtime import build_runtime

    async def run() -> dict[str, tuple[int, int]]:
        counts: dict[str, list[int]] = {}
        town = load_town(town_dir)
        probe = redis.Redis.from_url(town.config.redis.url or "")
        probe.delete(TownKeys(town.name).reconciled_at)
        app = create_app(build_runtime(town, load_plugins()))
        async with AsyncTestClient(app=app) as client, AsyncTestClient(app=build(redis_url, town.name)) as bare:
            while not probe.exists(TownKeys(town.name).reconciled_at):  # background startup work first
                time.sleep(0.02)
            probe.close()
            for route in routes:
                for one in (client, bare):
                    for attempt in range(2):  # the first call may load Lua scripts
                        with counting_round_trips() as counter:
                            response = await one.request(
                                route.method, route.path, content=route.body or None,
                                headers={"content-type": "application/json"} if route.body else {})
                        response.raise_for_status()
                    counts.setdefault(route.label, []).append(counter.count)
        return {label: (n[0], n[1]) for label, n in counts.items()}

    return asyncio.run(run())


def seed_many(redis_url: str, town: str, count: int) -> None:
    """``count`` agents written through the store; every tenth works on a task and has mail waiting."""

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            seed = TownSeed(client, town)
            for i in range(count):
                agent = await seed.agent(f"agent-{i}", AgentState.IDLE)
                if i % 10 == 0:
                    task = await seed.task(TaskState.RUNNING, assigned_to=agent.id)
                    await seed.store.agents.update(agent.id, AgentPatch(current_task=task.id,
                                                                        state=AgentState.WORKING))
                    await seed.assigned_task(agent)
        finally:
            await client.aclose()

    asyncio.run(run())


def start_baseline(redis_url: str, town: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.baseline", redis_url, town, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("baseline did not start")


def _alternate(spec_a: LoadSpec, spec_b: LoadSpec, rounds: int) -> list[tuple[LoadResult, LoadResult]]:
    """``rounds`` pairs of runs, A and B back to back, the order swapped every round."""
    pairs = []
    for i in range(rounds):
        if i % 2 == 0:
            a = run_load(spec_a)
            b = run_load(spec_b)
        else:
            b = run_load(spec_b)
            a = run_load(spec_a)
        pairs.append((a, b))
    return pairs


def measure_pair(spec_a: LoadSpec, spec_b: LoadSpec, rounds: int,
                 key: Callable[[LoadResult], float] = lambda r: r.rps) -> tuple[LoadResult, LoadResult]:
    """Alternate A and B; report the round with the median ``key`` (the rate) of each."""
    pairs = _alternate(spec_a, spec_b, rounds)
    pick = lambda runs: sorted(runs, key=key)[len(runs) // 2]  # noqa: E731
    return pick([a for a, _ in pairs]), pick([b for _, b in pairs])


def measure_ratio(spec_a: LoadSpec, spec_b: LoadSpec, rounds: int) -> tuple[LoadResult, LoadResult]:
    """Alternate A and B; report the pair of runs whose rate ratio (B ÷ A) is the median. Each ratio is
    of two runs a few seconds apart, so a change in the machine's load between rounds moves both;
    the median of the ratios is what one pair usually shows (docs/performance.md: noise)."""
    pairs = sorted(_alternate(spec_a, spec_b, rounds), key=lambda pair: pair[1].rps / max(pair[0].rps, 1e-9))
    return pairs[len(pairs) // 2]


def _check(result: LoadResult, label: str) -> None:
    if not result.requests:
        raise RuntimeError(f"{label}: no request completed in the round")
    bad = {s: n for s, n in result.statuses.items() if not s.startswith("2")}
    if bad or result.errors:
        raise RuntimeError(f"{label}: non-2xx responses {bad}, connection errors {result.errors}")


def tail_rows(route: Route, spec_t: LoadSpec, spec_b: LoadSpec, rounds: int) -> Row:
    """p99 ÷ p50 of townhall under ``TAIL_CONNECTIONS`` connections (the median of ``rounds`` runs)."""
    many_t = replace(spec_t, connections=TAIL_CONNECTIONS)
    many_b = replace(spec_b, connections=TAIL_CONNECTIONS)
    b, t = measure_pair(many_b, many_t, rounds, key=lambda r: r.p99_ms / r.p50_ms)
    _check(t, f"townhall {route.label} x{TAIL_CONNECTIONS}")
    spread = t.p99_ms / t.p50_ms
    return Row(section=f"tail latency at {TAIL_CONNECTIONS} connections (p50 -> p99, ms)", name=route.label,
               reference="p50", reference_value=t.p50_ms, value=t.p99_ms, unit="ms", ratio=spread,
               target=f"<= {TAIL_TARGET:g}x", met=spread <= TAIL_TARGET,
               detail=f"baseline p50 {b.p50_ms:.1f}, p99 {b.p99_ms:.1f} ms ({b.p99_ms / b.p50_ms:.2f}x)")


def pair_row(section: str, route: Route, b: LoadResult, t: LoadResult, trips: tuple[int, int]) -> Row:
    ratio = t.rps / b.rps
    rtt_ok = trips[0] == trips[1] == route.min_rtt
    return Row(section=section, name=route.label, reference="baseline", reference_value=b.rps, value=t.rps,
               unit="/s", ratio=ratio, target=f">= {TARGET}x, {route.min_rtt} RTT",
               met=ratio >= TARGET and rtt_ok,
               detail=f"p50 {b.p50_ms:.1f}/{t.p50_ms:.1f} ms, p99 {b.p99_ms:.1f}/{t.p99_ms:.1f} ms, "
                      f"RTT {trips[0]} (baseline {trips[1]}, fewest {route.min_rtt})")


def run(root: Path, redis_url: str, *, duration: float, connections: int, rounds: int,
        api_key: tuple[str, str]) -> list[Row]:
    key, key_hash = api_key
    rows: list[Row] = []
    town, big_town = "bench", "bench1k"
    plain_dir, keyed_dir, big_dir = root / "plain", root / "keyed", root / "big"
    for d in (plain_dir, keyed_dir, big_dir):
        d.mkdir()
    # The bench's agents have no workers: no sweep may declare them lost (and refuse work) mid-run.
    no_sweep = '[agent]\nlauncher = "none"\nstale_after_secs = 86400\n'
    write_town(plain_dir, town, redis_url=redis_url, extra=no_sweep)
    write_town(big_dir, big_town, redis_url=redis_url, extra=no_sweep)
    write_town(keyed_dir, town, redis_url=redis_url,
               extra=f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{key_hash}"\n'
                     "[townhall.rate_limit]\nenabled = false\n" + no_sweep)
    seed_many(redis_url, big_town, MANY_AGENTS)
    # Started together and given time: on a loaded machine one start can take half a minute.
    plain, keyed, big = (TownhallProcess(d).start(wait=False) for d in (plain_dir, keyed_dir, big_dir))
    for proc in (plain, keyed, big):
        proc.wait_healthy(timeout=180)
    baseline, baseline_port = start_baseline(redis_url, town)
    big_baseline, big_baseline_port = start_baseline(redis_url, big_town)
    try:
        for proc in (plain, keyed, big):
            assert proc.process is not None
            pin(proc.process.pid)
        seed_town(plain.url)
        trips = count_round_trips(plain_dir, redis_url, ROUTES)
        big_trips = count_round_trips(big_dir, redis_url, SIZE_ROUTES)
        base = LoadSpec(host="127.0.0.1", port=0, method="GET", path="/", connections=connections,
                        duration=duration, cpu=LOAD_CPU)
        ratios: dict[str, float] = {}
        tails: list[Row] = []
        for route in ROUTES:
            spec_t = replace(base, port=plain.port, method=route.method, path=route.path, body=route.body)
            spec_b = replace(spec_t, port=baseline_port)
            # Each route's tail is measured right after its rate, on the same data (POST /v1/backlog
            # grows the backlog that GET /v1/backlog lists, so it comes last).
            # The rate ratios sit next to their 0.85 threshold: nearly twice the pairs, so that the
            # median moves less with the machine's noise (docs/performance.md).
            b, t = measure_ratio(spec_b, spec_t, 2 * rounds - 1)
            _check(b, f"baseline {route.label}")
            _check(t, f"townhall {route.label}")
            ratios[route.path] = t.rps / b.rps
            rows.append(pair_row("townhall vs bare baseline (req/s)", route, b, t, trips[route.label]))
            tails.append(tail_rows(route, spec_t, spec_b, rounds))
        rows += tails
        for route in SIZE_ROUTES:
            # A 1,000-agent answer is ~0.4 MB: few connections, long enough rounds for many of them.
            spec_t = replace(base, port=big.port, method=route.method, path=route.path, connections=4,
                             duration=max(duration, 4.0))
            b, t = measure_ratio(replace(spec_t, port=big_baseline_port), spec_t, rounds)
            _check(b, f"baseline {route.label} x{MANY_AGENTS}")
            _check(t, f"townhall {route.label} x{MANY_AGENTS}")
            at_many, at_few = t.rps / b.rps, ratios[route.path]
            label = route.label.replace(f"({AGENTS} agents)", f"({MANY_AGENTS:,} agents)")
            rows.append(Row(section=f"cost with size: townhall / baseline at {MANY_AGENTS:,} vs {AGENTS} agents",
                            name=label, reference=f"ratio at {AGENTS}", reference_value=at_few, value=at_many,
                            unit="x", ratio=at_many / at_few, target=f">= {SIZE_TARGET}x",
                            met=at_many / at_few >= SIZE_TARGET and big_trips[route.label][0] == route.min_rtt,
                            detail=f"{b.rps:.0f}/{t.rps:.0f} req/s, p50 {b.p50_ms:.1f}/{t.p50_ms:.1f} ms, "
                                   f"RTT {big_trips[route.label][0]} (baseline {big_trips[route.label][1]})"))
        few_ms, many_ms = metrics_median_ms(plain.url), metrics_median_ms(big.url)
        rows.append(Row(section=f"cost with size: townhall / baseline at {MANY_AGENTS:,} vs {AGENTS} agents",
                        name=f"/metrics ({MANY_AGENTS:,} agents), median", reference=f"{AGENTS} agents",
                        reference_value=few_ms, value=many_ms, unit="ms", ratio=many_ms / few_ms,
                        target=f"< {METRICS_TARGET_MS:g} ms", met=many_ms < METRICS_TARGET_MS))
        status = next(r for r in ROUTES if r.path == "/v1/status")
        spec_plain = replace(base, port=plain.port, path=status.path)
        spec_keyed = replace(spec_plain, port=keyed.port, headers=(("Authorization", f"Bearer {key}"),))
        p, k = measure_ratio(spec_plain, spec_keyed, rounds)
        _check(k, "api_key status")
        ratio = k.rps / p.rps
        rows.append(Row(section="api_key vs no auth (req/s)", name="GET /v1/status", reference="auth none",
                        reference_value=p.rps, value=k.rps, unit="/s", ratio=ratio, target=">= 0.9x",
                        met=ratio >= 0.9,
                        detail=f"p50 {p.p50_ms:.1f}/{k.p50_ms:.1f} ms, p99 {p.p99_ms:.1f}/{k.p99_ms:.1f} ms"))
    finally:
        for proc in (baseline, big_baseline):
            proc.terminate()
            proc.wait()
        plain.stop()
        keyed.stop()
        big.stop()
    return rows


def metrics_median_ms(base_url: str, requests: int = 200) -> float:
    """Median latency of sequential ``GET /metrics`` (one client, after a tenth as warm-up)."""
    timings: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i in range(requests + requests // 10):
            started = time.perf_counter()
            client.get("/metrics").raise_for_status()
            if i >= requests // 10:
                timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000
