"""The server client's call timeout (townhall/redis_watchdog.py) against a real Redis that stops
answering (SIGSTOP): the call fails as redis-py's own socket timeout would, and the client works again
once Redis does."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import redis.exceptions

from townhall.redis_clients import async_client
from townhall.redis_endpoint import RedisEndpoint
from townhall.testing.redis_server import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


async def test_a_call_to_a_redis_that_stopped_answering_times_out_and_the_client_recovers(
        own_redis: RedisServer) -> None:
    client = async_client(RedisEndpoint(url=own_redis.url, explicit=True), socket_timeout=0.5, socket_connect_timeout=2,
                          watched=True)
    try:
        assert client.connection_pool.connection_kwargs["socket_timeout"] is None  # no per-call timer
        for i in range(200):  # calls well within the timeout are not cut, pipelines included
            await client.set(f"k{i}", i)
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("k1").incr("k2")
            assert await pipe.execute() == [2, 3]
        assert own_redis.process is not None
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError, match="Timeout reading from"):
            await asyncio.wait_for(client.get("k1"), timeout=10)  # without a timeout: a failure, not a hang
        # At the timeout, give or take a tick and a loaded machine; a call without one would hang.
        assert 0.4 <= time.monotonic() - started < 5
        os.kill(own_redis.process.pid, signal.SIGCONT)
        assert await client.get("k1") == "2"
    finally:
        await client.aclose()
