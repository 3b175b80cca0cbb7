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
import time
from pathlib import Path

import redis.asyncio as aioredis

from townhall.config import load_town
from townhall.domain import TaskState, utc_now
from townhall.plugins import collect_registry, make_plugin_manager
from townhall.redis_endpoint import ping, server_binary
from townhall.services.town import open_town_services


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [server_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    deadline = time.monotonic() + 10
    while not (sock.exists() and ping(url)):
        if time.monotonic() > deadline:
            raise RuntimeError("redis did not start")
        time.sleep(0.02)
    return proc, url


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
    services = open_town_services(load_town(root), redis, collect_registry(make_plugin_manager()))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server, url = start_redis(base)
        try:
            rows = []
            for streams in (False, True):
                for via_backlog in (False, True):
                    root = base / f"town-{int(streams)}{int(via_backlog)}"
                    root.mkdir()
                    write_town(root, f"bench{os.getpid()}{int(streams)}{int(via_backlog)}", url, streams)
                    lat = asyncio.run(measure(root, url, args.tasks, via_backlog))
                    rows.append(("streams" if streams else "lists", "backlog" if via_backlog else "assign",
                                 statistics.median(lat), percentile(lat, 99), len(lat)))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    print(f"{'queue':<8} {'via':<8} {'median ms':>10} {'p99 ms':>10} {'n':>5}")
    for queue, via, med, p99, n in rows:
        print(f"{queue:<8} {via:<8} {med:>10.2f} {p99:>10.2f} {n:>5}")


if __name__ == "__main__":
    main()
