"""Townhall against the bare baseline, and api_key against no auth, under the same load, in one run.

Both servers (and Redis) are pinned to one core, the load generator to the other; the two servers are
measured in alternating rounds so machine noise hits both alike.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import redis

from bench.load import LoadResult, LoadSpec, run_load
from bench.report import Row
from bench.rtt import counting_round_trips
from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess, free_port
from townhall.testing.towns import write_town

AGENTS = 10
BACKLOG = 20
SERVER_CPU, LOAD_CPU = (0, 1) if (os.cpu_count() or 1) > 1 else (None, None)


def pin(pid: int) -> None:
    if SERVER_CPU is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {SERVER_CPU})


class Route:
    def __init__(self, label: str, method: str, path: str, body: bytes = b"", target: float | None = None):
        self.label, self.method, self.path, self.body, self.target = label, method, path, body, target


ROUTES = [
    Route("GET /health", "GET", "/health"),
    Route("GET /v1/status (10 agents)", "GET", "/v1/status", target=0.5),
    Route("GET /v1/backlog", "GET", "/v1/backlog"),
    Route("POST /v1/tasks/assign", "POST", "/v1/tasks/assign", b'{"agent":"agent-3","task":"bench"}', 0.6),
    Route("POST /v1/backlog", "POST", "/v1/backlog", b'{"description":"bench task"}'),
]


def seed_town(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(AGENTS):
            http.post("/v1/agents", json={"name": f"agent-{i}", "cli": "claude"}).raise_for_status()
        for i in range(BACKLOG):
            http.post("/v1/backlog", json={"description": f"seed {i}"}).raise_for_status()


def count_round_trips(town_dir: Path) -> dict[str, int]:
    """Round trips per route, measured on an in-process townhall over the same town."""
    from litestar.testing import AsyncTestClient

    from townhall.app import create_app
    from townhall.config import load_town
    from townhall.plugins import load_plugins
    from townhall.runtime import build_runtime

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        town = load_town(town_dir)
        probe = redis.Redis.from_url(town.config.redis.url or "")
        probe.delete(TownKeys(town.name).reconciled_at)
        app = create_app(build_runtime(town, load_plugins()))
        async with AsyncTestClient(app=app) as client:
            while not probe.exists(TownKeys(town.name).reconciled_at):  # background startup work first
                time.sleep(0.02)
            probe.close()
            for route in ROUTES:
                for attempt in range(2):  # the first call may load Lua scripts
                    with counting_round_trips() as counter:
                        await client.request(route.method, route.path, content=route.body or None,
                                             headers={"content-type": "application/json"} if route.body else {})
                    counts[route.label] = counter.count
        return counts

    return asyncio.run(run())


def start_baseline(redis_url: str, town: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.baseline", redis_url, town, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("baseline did not start")


def measure_pair(spec_a: LoadSpec, spec_b: LoadSpec, rounds: int) -> tuple[LoadResult, LoadResult]:
    """Alternate A and B; report the round with the median rate of each."""
    a_runs, b_runs = [], []
    for i in range(rounds):
        order = [(spec_a, a_runs), (spec_b, b_runs)] if i % 2 == 0 else [(spec_b, b_runs), (spec_a, a_runs)]
        for spec, runs in order:
            runs.append(run_load(spec))
    pick = lambda runs: sorted(runs, key=lambda r: r.rps)[len(runs) // 2]  # noqa: E731
    return pick(a_runs), pick(b_runs)


def _check(result: LoadResult, label: str) -> None:
    bad = {s: n for s, n in result.statuses.items() if not s.startswith("2")}
    if bad or result.errors:
        raise RuntimeError(f"{label}: non-2xx responses {bad}, connection errors {result.errors}")


def run(root: Path, redis_url: str, *, duration: float, connections: int, rounds: int,
        api_key: tuple[str, str]) -> list[Row]:
    key, key_hash = api_key
    rows: list[Row] = []
    town = "bench"
    plain_dir, keyed_dir = root / "plain", root / "keyed"
    for d in (plain_dir, keyed_dir):
        d.mkdir()
    write_town(plain_dir, town, redis_url=redis_url)
    write_town(keyed_dir, town, redis_url=redis_url,
               extra=f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{key_hash}"\n'
                     "[townhall.rate_limit]\nenabled = false\n")
    plain = TownhallProcess(plain_dir).start()
    keyed = TownhallProcess(keyed_dir).start()
    baseline, baseline_port = start_baseline(redis_url, town)
    try:
        for proc in (plain, keyed):
            assert proc.process is not None
            pin(proc.process.pid)
        seed_town(plain.url)
        trips = count_round_trips(plain_dir)
        base = LoadSpec(host="127.0.0.1", port=0, method="GET", path="/", connections=connections,
                        duration=duration, cpu=LOAD_CPU)
        for route in ROUTES:
            spec_t = replace(base, port=plain.port, method=route.method, path=route.path, body=route.body)
            spec_b = replace(spec_t, port=baseline_port)
            b, t = measure_pair(spec_b, spec_t, rounds)
            _check(b, f"baseline {route.label}")
            _check(t, f"townhall {route.label}")
            detail = f"p50 {b.p50_ms:.1f}/{t.p50_ms:.1f} ms, p99 {b.p99_ms:.1f}/{t.p99_ms:.1f} ms, {trips[route.label]} RTT"
            ratio = t.rps / b.rps
            rows.append(Row(section="townhall vs bare baseline (req/s)", name=route.label, reference="baseline",
                            reference_value=b.rps, value=t.rps, unit="/s", ratio=ratio,
                            target=f">= {route.target}x" if route.target else "",
                            met=(ratio >= route.target) if route.target else None, detail=detail))
        status = next(r for r in ROUTES if r.path == "/v1/status")
        spec_plain = replace(base, port=plain.port, path=status.path)
        spec_keyed = replace(spec_plain, port=keyed.port, headers=(("Authorization", f"Bearer {key}"),))
        p, k = measure_pair(spec_plain, spec_keyed, rounds)
        _check(k, "api_key status")
        ratio = k.rps / p.rps
        rows.append(Row(section="api_key vs no auth (req/s)", name="GET /v1/status", reference="auth none",
                        reference_value=p.rps, value=k.rps, unit="/s", ratio=ratio, target=">= 0.9x",
                        met=ratio >= 0.9,
                        detail=f"p50 {p.p50_ms:.1f}/{k.p50_ms:.1f} ms, p99 {p.p99_ms:.1f}/{k.p99_ms:.1f} ms"))
    finally:
        baseline.terminate()
        baseline.wait()
        plain.stop()
        keyed.stop()
    return rows

