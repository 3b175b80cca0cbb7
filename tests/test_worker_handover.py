"""The ordering rule (issue 11 item 1) with real processes: a task handed to an agent is visible to its
worker only together with a record that says so, and a worker never drops a task silently."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.handover import reclaim_to_idle_worker
from tests.support.workers import reap_workers


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    yield
    reap_workers()


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_reclaim_to_an_idle_worker_always_runs_the_task(tmp_path: Path, town_name: str, redis_url: str,
                                                              aredis: aioredis.Redis, streams: bool) -> None:
    await reclaim_to_idle_worker(tmp_path, town_name, redis_url, aredis, rounds=15, streams=streams)

