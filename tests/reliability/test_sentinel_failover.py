"""Issue 15 item 4: Redis Sentinel. A primary, two replicas and three sentinels on this machine; townhall and
two workers find the primary through the sentinels, with ``wait_replicas = 1``. The primary is SIGKILLed
under load: requests answer 503 during the switch (never later than the request deadline), then 201/200
against the new primary with nothing restarted; the workers carry on; every task whose creation was
acknowledged (201) is there after the failover and ends ``completed``. Bounded: one failover; long form:
three, the killed node coming back as a replica each time."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import LONG
from tests.support.hammer import Sample, hammer
from tests.support.sentinel import SentinelCluster
from tests.support.workers import fake_town, reap_workers, start_worker
from townhall.testing.process import TownhallProcess

TIMEOUT_MS = 3000
FAILOVERS = 3 if LONG else 1


async def _until_ready(base: str, timeout: float = 60) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        deadline = time.monotonic() + timeout
        while (await http.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, "townhall did not recover after the failover"
            await asyncio.sleep(0.1)


async def test_a_primary_killed_under_load_fails_over_without_losing_acknowledged_tasks(
        tmp_path: Path, town_name: str) -> None:
    cluster = SentinelCluster(tmp_path / "sentinel", replicas=2)
    cluster.start()
    fake_town(tmp_path, town_name, None)
    with (tmp_path / "tinytown.toml").open("a") as f:
        f.write(f"[townhall]\nrequest_timeout_ms = {TIMEOUT_MS}\n"
                "[redis]\nwait_replicas = 1\nwait_timeout_ms = 1500\n" + cluster.toml())
    proc = TownhallProcess(tmp_path).start()
    async with httpx.AsyncClient(base_url=proc.url) as http:
        assert (await http.get("/v1/town")).json()["redis_url"].startswith("sentinel://127.0.0.1:")
        agents = [(await http.post("/v1/agents", json={"name": f"w{i}"})).json()["agent_id"] for i in range(2)]
    workers = [start_worker(tmp_path, f"w{i}", agent_id) for i, agent_id in enumerate(agents)]
    stop = asyncio.Event()
    seen: list[Sample] = []
    created: list[str] = []
    switches: list[tuple[float, float]] = []
    try:
        load = [asyncio.create_task(hammer(proc.url, stop, seen, created, "failover")) for _ in range(6)]
        for _ in range(FAILOVERS):
            await asyncio.sleep(1.5)
            before = len(created)
            old = cluster.kill_primary()
            killed_at = time.monotonic()
            await asyncio.to_thread(cluster.wait_failover, old.port)
            await _until_ready(proc.url)
            # Writes go through again once the new primary has a replica in sync (WAIT 1).
            created_then = len(created)
            deadline = time.monotonic() + 60
            while len(created) == created_then:
                assert time.monotonic() < deadline, "no task was created after the failover"
                await asyncio.sleep(0.1)
            switches.append((killed_at, time.monotonic()))
            assert len(created) > before
            if LONG:
                old.start()  # the sentinels make the old primary a replica of the new one
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*load)

        statuses = {s.status for s in seen}
        assert statuses <= {200, 201, 503}, statuses
        during = [s for s in seen if any(a <= s.started <= b for a, b in switches)]
        assert 503 in {s.status for s in during}
        assert all("application/problem+json" in s.content_type for s in seen if s.status == 503)
        assert max(s.elapsed for s in seen) < TIMEOUT_MS / 1000 + 1.0
        assert {s.status for s in seen[-10:]} <= {200, 201}

        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                states = [(await http.get(f"/v1/tasks/{t}")).json().get("state", "lost") for t in created]
                if all(state == "completed" for state in states) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert sorted(set(states)) == ["completed"], "an acknowledged task was lost or not completed"
        for worker in workers:
            assert worker.poll() is None, "a worker died in the failover"
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
    finally:
        stop.set()
        reap_workers()
        proc.stop()
        cluster.stop()
