"""What ``[redis] wait_replicas = 1`` costs a write: ``python -m bench.wait_replicas``

Starts a primary and one replica (``replicaof``, loopback TCP) and two townhall processes on the same
primary: one with ``wait_replicas = 0``, one with ``wait_replicas = 1``. Then it times ``POST /v1/backlog``
(a task created: one Lua call, plus a ``WAIT 1`` in the same round trip for the second townhall),
alternating between the two request by request so that machine noise hits both alike, and reports the
median latency of each and their ratio (docs/high-availability.md quotes it). No target: the figure is the
price of not losing acknowledged tasks in a failover.

Options: ``--requests N`` per townhall (default 400).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import redis

from bench.report import Row
from townhall.testing.process import TownhallProcess, free_port
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town


def _replica_online(primary: RedisServer, timeout: float = 30) -> None:
    client = redis.Redis.from_url(primary.url, decode_responses=True)
    deadline = time.monotonic() + timeout
    try:
        while not any(isinstance(v, dict) and v.get("state") == "online"
                      for k, v in client.info("replication").items() if k.startswith("slave")):
            if time.monotonic() > deadline:
                raise TimeoutError("the replica never came online")
            time.sleep(0.05)
    finally:
        client.close()


def measure(bases: dict[int, str], requests: int) -> dict[int, list[float]]:
    timings: dict[int, list[float]] = {wait: [] for wait in bases}
    with httpx.Client(timeout=30) as client:
        for i in range(requests + requests // 10):
            for wait in sorted(bases) if i % 2 == 0 else sorted(bases, reverse=True):
                started = time.perf_counter()
                response = client.post(bases[wait] + "/v1/backlog", json={"description": f"bench {i}"})
                elapsed = time.perf_counter() - started
                if response.status_code != 201:
                    raise RuntimeError(f"wait_replicas={wait}: {response.status_code} {response.text[:200]}")
                if i >= requests // 10:  # the first tenth warms connections and scripts up
                    timings[wait].append(elapsed)
    return timings


def collect(requests: int) -> dict[int, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="wait-replicas-"))
    port = free_port()
    primary = RedisServer(root / "primary", args=["--port", str(port), "--bind", "127.0.0.1"])
    replica = RedisServer(root / "replica", args=["--replicaof", "127.0.0.1", str(port)])
    procs: list[TownhallProcess] = []
    try:
        for server in (primary, replica):
            server.directory.mkdir()
            server.start()
        _replica_online(primary)
        bases: dict[int, str] = {}
        for wait in (0, 1):
            town_dir = root / f"wait{wait}"
            town_dir.mkdir()
            write_town(town_dir, f"bench-wait{wait}", redis_url=f"redis://127.0.0.1:{port}")
            text = (town_dir / "tinytown.toml").read_text()
            (town_dir / "tinytown.toml").write_text(text.replace("[redis]\n", f"[redis]\nwait_replicas = {wait}\n"))
            procs.append(TownhallProcess(town_dir).start())
            bases[wait] = procs[-1].url
        return measure(bases, requests)
    finally:
        for proc in procs:
            proc.stop()
        replica.stop()
        primary.stop()


def rows(quick: bool = False, requests: int | None = None) -> list[Row]:
    timings = collect(requests or (60 if quick else 400))
    without, with_wait = (statistics.median(timings[w]) * 1000 for w in (0, 1))
    return [Row(section="replication", name="POST /v1/backlog, wait_replicas=1", reference="wait_replicas=0",
                reference_value=without, value=with_wait, unit="ms", ratio=with_wait / without,
                detail="median latency; one replica on loopback (WAIT 1 in the write's round trip)")]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wait_replicas", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    from bench.report import print_table

    print_table(rows(requests=args.requests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
