"""Does a long history cost the probes anything? ``python -m bench.history_cost``

Starts a private Redis and two townhall processes: one on a town without history, one on a town holding
100,000 completed tasks (written raw with pipelined ``HSET``, like another tool would, then counted and
indexed by townhall's startup reconcile). Both towns get the same open work (agents, backlog,
assignments), so only the history differs. Then it measures the median latency of ``/api/scaling``,
``/metrics``, ``/ready`` and a page of the task history (``/v1/tasks?state=completed&limit=50``),
alternating between the two towns request by request so that machine noise hits both alike, and prints
the ratios. Target: every ratio ≤ 1.2.

The town without history holds exactly one page (50) of completed tasks, so that both answer the same
page: the ratio then measures what the 100,000 tasks behind that page cost, not the encoding of 50 items
against none.

Options: ``--tasks N`` (default 100000), ``--requests N`` per endpoint and town (default 400).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
import redis.asyncio as aioredis

from bench.report import Row
from townhall.domain import AgentState, Task, TaskState
from townhall.keys import TownKeys
from townhall.store import AgentPatch
from townhall.store.codec import task_to_hash
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.seed import TownSeed
from townhall.testing.towns import write_town

ENDPOINTS = ("/api/scaling", "/metrics", "/ready", "/v1/tasks?state=completed&limit=50")
#: Completed tasks in the town "without history": one page of ``/v1/tasks``.
ONE_PAGE = 50
TARGET = 1.2
BATCH = 5000


def fill_history(url: str, town: str, count: int) -> None:
    keys = TownKeys(town)
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        for start in range(0, count, BATCH):
            with client.pipeline(transaction=False) as pipe:
                for _ in range(start, min(start + BATCH, count)):
                    task = Task.new("finished long ago", state=TaskState.COMPLETED)
                    task.result = "done"
                    pipe.hset(keys.task(task.id), mapping=task_to_hash(task).set)
                pipe.execute()
    finally:
        client.close()


async def open_work(url: str, town: str) -> None:
    """The same small amount of live work in both towns."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        seed = TownSeed(client, town)
        agents = [await seed.agent(f"worker-{i}", state) for i, state in
                  enumerate([AgentState.IDLE, AgentState.WORKING, AgentState.STARTING])]
        for _ in range(5):
            await seed.backlog_task()
        for agent in agents:
            await seed.assigned_task(agent)
        running = await seed.task(TaskState.RUNNING, assigned_to=agents[1].id)
        await seed.store.agents.update(agents[1].id, AgentPatch(current_task=running.id))
    finally:
        await client.aclose()


def wait_reconciled(url: str, town: str, timeout: float = 300) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + timeout
    try:
        while not client.exists(TownKeys(town).reconciled_at):
            if time.monotonic() > deadline:
                raise TimeoutError(f"town {town} was never reconciled")
            time.sleep(0.05)
    finally:
        client.close()


def measure(empty: str, full: str, requests: int) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    with httpx.Client(timeout=30) as client:
        for path in ENDPOINTS:
            timings: dict[str, list[float]] = {empty: [], full: []}
            for i in range(requests + requests // 10):
                for base in (empty, full) if i % 2 == 0 else (full, empty):
                    started = time.perf_counter()
                    response = client.get(base + path)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{base}{path}: {response.status_code} {response.text[:200]}")
                    if i >= requests // 10:  # the first tenth warms connections and caches up
                        timings[base].append(elapsed)
            results[path] = (statistics.median(timings[empty]), statistics.median(timings[full]))
    return results


def completed_total(base: str) -> float:
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith("tinytown_tasks_completed_total "):
            return float(line.split()[1])
    raise RuntimeError("no tinytown_tasks_completed_total in /metrics")


def collect(tasks: int, requests: int) -> dict[str, tuple[float, float]]:
    """Median seconds per endpoint: (empty town, town with ``tasks`` completed tasks)."""
    root = Path(tempfile.mkdtemp(prefix="history-cost-"))
    (root / "redis").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    procs: list[TownhallProcess] = []
    try:
        towns = {"empty": "bench-empty", "full": "bench-history"}
        started = time.perf_counter()
        fill_history(server.url, towns["full"], tasks)
        fill_history(server.url, towns["empty"], ONE_PAGE)
        print(f"wrote {tasks:,} completed tasks in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        bases = {}
        for label, town in towns.items():
            asyncio.run(open_work(server.url, town))
            town_dir = root / label
            town_dir.mkdir()
            write_town(town_dir, town, redis_url=server.url)
            # Townhall serves once its startup reconcile has indexed the history (seconds for 100,000).
            procs.append(TownhallProcess(town_dir).start(timeout=300))
            bases[label] = procs[-1].url
        started = time.perf_counter()
        for town in towns.values():
            wait_reconciled(server.url, town)
        print(f"startup reconcile done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        assert completed_total(bases["full"]) == tasks, "the history town does not count its tasks"
        page = httpx.get(bases["full"] + ENDPOINTS[-1]).json()
        assert len(page["tasks"]) == ONE_PAGE and page["next_cursor"], "the history town does not list its tasks"
        return measure(bases["empty"], bases["full"], requests)
    finally:
        for proc in procs:
            proc.stop()
        server.stop()


def rows(quick: bool = False) -> list[Row]:
    """The section of ``python -m bench``."""
    tasks = 100_000
    return [
        Row(section=f"cost of {tasks:,} completed tasks (median ms)", name=path,
            reference=f"{ONE_PAGE} completed" if path.startswith("/v1/tasks") else "empty town",
            reference_value=empty_s * 1000, value=full_s * 1000, unit="ms", ratio=full_s / empty_s,
            target=f"<= {TARGET}x", met=full_s / empty_s <= TARGET)
        for path, (empty_s, full_s) in collect(tasks, 150 if quick else 400).items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    results = collect(args.tasks, args.requests)
    print(f"\n{'endpoint':<38}{'empty ms':>10}{'history ms':>12}{'ratio':>8}  target ≤ {TARGET}")
    worst = 0.0
    for path, (empty_s, full_s) in results.items():
        ratio = full_s / empty_s
        worst = max(worst, ratio)
        print(f"{path:<38}{empty_s * 1000:>10.3f}{full_s * 1000:>12.3f}{ratio:>8.2f}  "
              f"{'ok' if ratio <= TARGET else 'OVER'}")
    print(f"\n{args.tasks:,} completed tasks, {args.requests} requests per endpoint and town (medians)")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
