"""Redis stopped under load, then started: prompt 503s, /ready follows, townhall and workers recover
without a restart, and every task created is completed."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import bounded
from tests.support.hammer import Sample, hammer
from tests.support.workers import fake_town, reap_workers, start_worker
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer

TIMEOUT_MS = 2000


async def test_redis_outage_under_load(tmp_path: Path, town_name: str) -> None:
    redis_server = RedisServer(tmp_path / "redis", persistent=True)
    (tmp_path / "redis").mkdir()
    redis_server.start()
    fake_town(tmp_path, town_name, redis_server.url)
    with (tmp_path / "tinytown.toml").open("a") as f:
        f.write(f"[townhall]\nrequest_timeout_ms = {TIMEOUT_MS}\n")
    proc = TownhallProcess(tmp_path).start()
    async with httpx.AsyncClient(base_url=proc.url) as http:
        agents = [(await http.post("/v1/agents", json={"name": f"w{i}"})).json()["agent_id"] for i in range(2)]
    workers_procs = [start_worker(tmp_path, f"w{i}", agent_id) for i, agent_id in enumerate(agents)]
    stop = asyncio.Event()
    seen: list[Sample] = []
    created: list[str] = []
    try:
        workers = [asyncio.create_task(hammer(proc.url, stop, seen, created, "outage")) for _ in range(8)]
        await asyncio.sleep(1)
        redis_server.stop()
        outage_started = len(seen)
        async with httpx.AsyncClient(base_url=proc.url, timeout=10) as http:
            await asyncio.sleep(bounded(3, 10))
            down = await http.get("/ready")
            assert down.status_code == 503 and down.json()["redis"] == "disconnected"
        during = seen[outage_started:]
        redis_server.start()
        async with httpx.AsyncClient(base_url=proc.url, timeout=10) as http:
            deadline = time.monotonic() + 15
            while (await http.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, "townhall did not recover"
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*workers)

        statuses = {s.status for s in during}
        assert 503 in statuses
        assert statuses <= {200, 201, 503}, statuses
        assert all("application/problem+json" in s.content_type for s in during if s.status == 503)
        assert max(s.elapsed for s in during) < TIMEOUT_MS / 1000 + 1.0
        assert {s.status for s in seen[-10:]} <= {200, 201}
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                states = [(await http.get(f"/v1/tasks/{t}")).json()["state"] for t in created]
                if all(state == "completed" for state in states) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert sorted(set(states)) == ["completed"], "a task created around the outage was lost"
        for worker in workers_procs:
            assert worker.poll() is None, "a worker died during the outage"
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
    finally:
        reap_workers()
        stop.set()
        proc.stop()
        redis_server.stop()
