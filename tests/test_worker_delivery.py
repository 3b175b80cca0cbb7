"""At-least-once delivery under SIGKILL (contract §7), in lists and streams mode.

Three workers whose CLI is a small script take 200 tasks (half through the backlog, half assigned
directly) while the test SIGKILLs workers at random mid-task and restarts them. Every task must end
``completed`` — recorded and counted exactly once — and none may be lost; re-execution is allowed.
The reliability suite runs the same with many more kills (``tests/reliability/test_worker_kills.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.chaos import sigkill_chaos


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_sigkill_chaos_loses_nothing(tmp_path: Path, town_name: str, redis_url: str,
                                           aredis: aioredis.Redis, streams: bool) -> None:
    await sigkill_chaos(tmp_path, town_name, redis_url, aredis, streams=streams, kills=8)
