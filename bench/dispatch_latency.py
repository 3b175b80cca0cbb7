"""Dispatch latency: from assigning a task (or adding it to the backlog) to a worker starting it.

Runs a private Redis on a unix socket in a temp dir, one real worker process (``tt agent-loop``) whose
CLI preset does nothing, and measures ``task.started_at − time of the assign/add call`` for sequential
tasks (each waits for the previous one to finish, so the worker is idle and blocked on Redis when the
work arrives). Modes: lists and streams queue backends × direct assignment and backlog.

    python -m bench.dispatch_latency [--tasks 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis.asyncio as aioredis

from bench.report import Row
from townhall.config import load_town
from townhall.domain import TaskState, utc_now
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.testing.redis_server import RedisServer


def write_town(root: Path, name: str, url: str, streams: bool) -> None:
    (root / ".tt" / "logs").mkdir(parents=True, exist_ok=True)
    (root / "tinytown.toml").write_text("\n".join([
        f'name = "{name}"',
        'default_cli = "noop"',
        f"use_streams = {'true' if streams else 'false'}",
        "[redis]", f'url = "{url}"',
        "[agent]", 'launcher = "none"', "idle_timeout_secs = 0",
        "[agent_clis.noop]", 'name = "noop"', 'command = "cat > /dev/null"',
    ]) + "\n")


async def measure(root: Path, url: str, tasks: int, via_backlog: bool) -> list[float]:
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    services = build_services(load_town(root), redis, load_plugins().registry)
    agent = await services.agents.spawn("bench", launch=False)
    worker = subprocess.Popen(
        [sys.executable, "-m", "townhall.cli.tt_cmd", "--town", str(root), "agent-loop", "bench", "--id", agent.id],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    latencies: list[float] = []
    try:
        while (await services.store.agents.get(agent.id)).state.value != "idle":  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # let it post its blocking reads
        for i in range(tasks):
            sent = utc_now()
            if via_backlog:
                task_id = (await services.backlog.add(f"bench {i}")).id
            else:
                task_id = (await services.tasks.assign("bench", f"bench {i}")).task.id
            while True:
                task = await services.store.tasks.get(task_id)
                if task is not None and task.state is TaskState.COMPLETED and task.started_at:
                    latencies.append((task.started_at - sent).total_seconds() * 1000)
                    break
                await asyncio.sleep(0.005)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
        await redis.aclose()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


TARGET_P50_MS = 10.0


def collect(tasks: int) -> list[tuple[str, str, float, float, int]]:
    """(queue, via, median ms, p99 ms, n) for lists/streams × assign/backlog."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "redis").mkdir()
        server = RedisServer(base / "redis")
        server.start()
        try:
            rows = []
            for streams in (False, True):
                for via_backlog in (False, True):
                    root = base / f"town-{int(streams)}{int(via_backlog)}"
                    root.mkdir()
                    write_town(root, f"bench{os.getpid()}{int(streams)}{int(via_backlog)}", server.url, streams)
                    lat = asyncio.run(measure(root, server.url, tasks, via_backlog))
                    rows.append(("streams" if streams else "lists", "backlog" if via_backlog else "assign",
                                 statistics.median(lat), percentile(lat, 99), len(lat)))
        finally:
            server.stop()
    return rows


def rows(quick: bool = False) -> list[Row]:
    """The section of ``python -m bench``: p50 against the 10 ms target, p99 in the detail."""
    return [
        Row(section="assign -> worker start (ms)", name=f"{queue}, via {via}", reference="target",
            reference_value=TARGET_P50_MS, value=med, unit="ms", ratio=med / TARGET_P50_MS,
            target="p50 < 10 ms", met=med < TARGET_P50_MS, detail=f"p99 {p99:.1f} ms, n={n}")
        for queue, via, med, p99, n in collect(15 if quick else 50)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    print(f"{'queue':<8} {'via':<8} {'median ms':>10} {'p99 ms':>10} {'n':>5}")
    for queue, via, med, p99, n in collect(args.tasks):
        print(f"{queue:<8} {via:<8} {med:>10.2f} {p99:>10.2f} {n:>5}")


if __name__ == "__main__":
    main()
