"""64 concurrent clients, mixed reads and writes: no server errors, and every task created is found."""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from tests.reliability.conftest import bounded
from townhall.testing.process import TownhallProcess

CLIENTS = 64


async def _client(base: str, stop_at: float, created: list[str], failures: list[str], seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.monotonic() < stop_at:
            roll = rng.random()
            if roll < 0.25:
                r = await http.post("/v1/backlog", json={"description": f"load task {seed}-{rng.random()}"})
                if r.status_code == 201:
                    created.append(r.json()["task_id"])
            elif roll < 0.45:
                r = await http.post("/v1/tasks/assign", json={"agent": "loader", "task": f"direct {seed}"})
                if r.status_code == 201:
                    created.append(r.json()["task_id"])
            elif roll < 0.65:
                r = await http.get("/v1/status")
            elif roll < 0.8:
                r = await http.get("/v1/backlog")
            elif roll < 0.9:
                r = await http.get("/v1/tasks/pending")
            else:
                r = await http.get("/api/scaling")
            if r.status_code >= 500:
                failures.append(f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:200]}")


async def test_mixed_load_has_no_server_errors_and_loses_nothing(townhall: TownhallProcess) -> None:
    async with httpx.AsyncClient(base_url=townhall.url) as http:
        spawned = await http.post("/v1/agents", json={"name": "loader", "cli": "claude"})
        assert spawned.status_code == 201, spawned.text
    created: list[str] = []
    failures: list[str] = []
    stop_at = time.monotonic() + bounded(8, 60)
    await asyncio.gather(*[_client(townhall.url, stop_at, created, failures, i) for i in range(CLIENTS)])
    assert failures == []
    assert len(created) > 100
    async with httpx.AsyncClient(base_url=townhall.url, timeout=30) as http:
        missing = []
        for task_id in created:
            r = await http.get(f"/v1/tasks/{task_id}")
            if r.status_code != 200:
                missing.append(task_id)
    assert missing == []
