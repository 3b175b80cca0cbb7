"""Broken agents in a busy town, both queue modes (issue 11): missing program, failing fast, hanging,
SIGKILLs and restarts, with reclaim (to an agent, to the backlog), assign-all and the restarts sent at the
same time over HTTP to a townhall process started by the test, paced by what the live workers do and
counted; healthy work completes exactly once, work built to fail dead-letters, nothing is lost or queued
twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.reliability.conftest import LONG
from tests.support.broken_chaos import broken_agents_chaos


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_broken_agents_do_not_eat_work(tmp_path: Path, town_name: str, redis_url: str,
                                             aredis: aioredis.Redis, streams: bool) -> None:
    if LONG:
        await broken_agents_chaos(tmp_path, town_name, redis_url, aredis, streams=streams, tasks=200,
                                  kills=30, restarts=4, api_calls=60, deadline_secs=400, seed=5)
    else:
        await broken_agents_chaos(tmp_path, town_name, redis_url, aredis, streams=streams)
