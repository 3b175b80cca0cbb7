"""Workers SIGKILLed repeatedly in both queue modes (100 kills in the long form): no task lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.reliability.conftest import LONG
from tests.support.chaos import sigkill_chaos


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_repeated_kills_lose_nothing(tmp_path: Path, town_name: str, redis_url: str,
                                           aredis: aioredis.Redis, streams: bool) -> None:
    if LONG:
        await sigkill_chaos(tmp_path, town_name, redis_url, aredis, streams=streams, tasks=1600, workers=4,
                            kills=100, deadline_secs=300, seed=99)
    else:
        await sigkill_chaos(tmp_path, town_name, redis_url, aredis, streams=streams, tasks=200, workers=3,
                            kills=20, deadline_secs=90, seed=7)
