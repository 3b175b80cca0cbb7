"""A small HTTP/1.1 keep-alive load generator, run in its own process (pinned to its own core when the
machine has more than one), so the server under test and the load do not share a CPU.

It pipelines nothing and parses only what it must (status line, Content-Length), which keeps it fast
enough that the server, not the client, is the bottleneck on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import asdict, dataclass


@dataclass
class LoadSpec:
    host: str
    port: int
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    connections: int = 16
    duration: float = 5.0
    warmup: float = 1.0
    cpu: int | None = None


@dataclass
class LoadResult:
    requests: int
    errors: int
    statuses: dict[str, int]
    rps: float
    p50_ms: float
    p99_ms: float


def _request_bytes(spec: LoadSpec) -> bytes:
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
    lines += [f"{k}: {v}" for k, v in spec.headers]
    if spec.body or spec.method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(spec.body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + spec.body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
            break
    if length:
        await reader.readexactly(length)
    return status


async def _worker(spec: LoadSpec, payload: bytes, start: float, stop: float,
                  latencies: list[float], statuses: dict[str, int], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(payload)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                errors[0] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(spec.host, spec.port)
                continue
            t1 = time.perf_counter()
            if t0 >= start:
                latencies.append(t1 - t0)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
    finally:
        writer.close()


async def _run(spec: LoadSpec) -> LoadResult:
    payload = _request_bytes(spec)
    now = time.perf_counter()
    start, stop = now + spec.warmup, now + spec.warmup + spec.duration
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = [0]
    await asyncio.gather(*[_worker(spec, payload, start, stop, latencies, statuses, errors)
                           for _ in range(spec.connections)])
    latencies.sort()
    n = len(latencies)
    return LoadResult(
        requests=n,
        errors=errors[0],
        statuses=statuses,
        rps=n / spec.duration,
        p50_ms=statistics.median(latencies) * 1000 if n else float("nan"),
        p99_ms=latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
    )


def _child(spec: LoadSpec, queue: "mp.Queue[str]") -> None:
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {spec.cpu})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    queue.put(json.dumps(asdict(asyncio.run(_run(spec)))))


def run_load(spec: LoadSpec) -> LoadResult:
    """Run one load test in a separate process and return its figures."""
    ctx = mp.get_context("spawn")
    queue: "mp.Queue[str]" = ctx.Queue()
    process = ctx.Process(target=_child, args=(spec, queue))
    process.start()
    result = json.loads(queue.get(timeout=spec.warmup + spec.duration + 60))
    process.join()
    return LoadResult(**result)
