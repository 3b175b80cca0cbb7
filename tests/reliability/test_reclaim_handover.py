"""Reclaim to an idle worker 200 times (2000 in the long form): every task runs (issue 11 item 1)."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from tests.reliability.conftest import bounded
from tests.support.handover import reclaim_to_idle_worker


async def test_reclaim_to_idle_worker_200_times(tmp_path: Path, town_name: str, redis_url: str,
                                                aredis: aioredis.Redis) -> None:
    await reclaim_to_idle_worker(tmp_path, town_name, redis_url, aredis, rounds=int(bounded(200, 2000)))
