"""Live events fan-out: 200 concurrent ``GET /v1/events`` subscribers, publish → received latency.

Starts a private Redis and one real townhall process, opens ``--subscribers`` event streams (each its
own connection, all to that one process) and waits for every ``: subscribed`` line. Then it appends
``--events`` events to the town stream one at a time through the store (as any change in the town
does), ``--gap-ms`` apart, and records for every subscriber when each arrived. Latency = arrival − the
moment before the append; p50 and p99 over all (event, subscriber) pairs. Target: p50 < 20 ms, p99 <
100 ms. The subscribers read raw bytes and only look for a marker, so the figure is townhall's, not a
client's parsing.

    python -m bench.events_fanout [--subscribers 200] [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.report import Row
from townhall.domain import TownEvent
from townhall.store import TownStore
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town

TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
MARK = re.compile(rb"bench#(\d+)#")


async def subscribe(port: int, arrivals: list[dict[int, float]], ready: asyncio.Semaphore) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/events?types=mission_event HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    seen: dict[int, float] = {}
    arrivals.append(seen)
    head = b""
    while b": subscribed" not in head:
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError(f"stream closed before it was subscribed: {head[:300]!r}")
        head += chunk
    ready.release()
    try:
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            for match in MARK.finditer(chunk):
                seen[int(match.group(1))] = now
    finally:
        writer.close()


async def measure(url: str, town: str, port: int, subscribers: int, events: int, gap_ms: float) -> list[float]:
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    store = TownStore(redis, town)
    arrivals: list[dict[int, float]] = []
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(subscribe(port, arrivals, ready)) for _ in range(subscribers)]
    try:
        async with asyncio.timeout(120):
            for _ in range(subscribers):
                await ready.acquire()
        sent: dict[int, float] = {}
        for seq in range(events):
            sent[seq] = time.perf_counter()
            await store.events.emit(TownEvent(event_type="mission_event", message=f"bench#{seq}#"))
            await asyncio.sleep(gap_ms / 1000)
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and any(len(seen) < events for seen in arrivals):
            await asyncio.sleep(0.05)
        missing = sum(events - len(seen) for seen in arrivals)
        if missing:
            raise RuntimeError(f"{missing} (event, subscriber) deliveries never arrived")
        return [(seen[seq] - sent[seq]) * 1000 for seen in arrivals for seq in range(events)]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def collect(subscribers: int, events: int, gap_ms: float) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, deliveries)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "redis").mkdir()
        server = RedisServer(base / "redis")
        server.start()
        town_dir = base / "town"
        town_dir.mkdir()
        name = f"benchevents{int(time.time())}"
        write_town(town_dir, name, redis_url=server.url)
        proc = TownhallProcess(town_dir).start(timeout=60)
        try:
            latencies = _run(measure(server.url, name, proc.port, subscribers, events, gap_ms))
        finally:
            proc.stop()
            server.stop()
    return statistics.median(latencies), percentile(latencies, 99), len(latencies)


def _run(coro):  # type: ignore[no-untyped-def]
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def rows(quick: bool = False, subscribers: int = 200) -> list[Row]:
    p50, p99, n = collect(subscribers, 30 if quick else 100, 50.0)
    return [Row(section="live events (ms)", name=f"{subscribers} subscribers, publish -> received",
                reference="target", reference_value=TARGET_P50_MS, value=p50, unit="ms",
                ratio=p50 / TARGET_P50_MS, target="p50<20 p99<100",
                met=p50 < TARGET_P50_MS and p99 < TARGET_P99_MS, detail=f"p99 {p99:.1f} ms, n={n}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    args = parser.parse_args()
    p50, p99, n = collect(args.subscribers, args.events, args.gap_ms)
    print(f"{args.subscribers} subscribers: publish -> received p50 {p50:.2f} ms, p99 {p99:.2f} ms ({n} deliveries)")


if __name__ == "__main__":
    main()
