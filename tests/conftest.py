"""Shared fixtures: a private Redis server per session (unix socket in a temp dir), towns, clients.

Nothing here touches the machine's Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from tests.support.process import TownhallProcess
from tests.support.redis_server import RedisServer
from tests.support.towns import write_town


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if not redis_server.running:
        redis_server.start()
    return redis_server.url


@pytest.fixture
def town_name() -> str:
    """A fresh town name per test: tests share one server but never each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def town_dir(tmp_path: Path, town_name: str, redis_url: str) -> Path:
    write_town(tmp_path, town_name, redis_url=redis_url)
    return tmp_path


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
def _no_machine_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A REDIS_URL in the developer's shell must never leak into tests.
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("TINYTOWN_REDIS_PASSWORD", raising=False)
    os.environ.setdefault("TOWNHALL_TEST", "1")


@pytest.fixture
def townhall(town_dir: Path) -> Iterator[TownhallProcess]:
    """A real townhall process serving ``town_dir`` (which points at the session's Redis)."""
    proc = TownhallProcess(town_dir).start()
    yield proc
    proc.stop()


@pytest.fixture
def serve(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[Callable[..., TownhallProcess]]:
    """``serve(extra_toml="")`` starts a real townhall on this test's (already seeded) town."""
    started: list[TownhallProcess] = []

    def start(extra: str = "") -> TownhallProcess:
        write_town(tmp_path, town_name, redis_url=redis_url, extra=extra)
        started.append(TownhallProcess(tmp_path).start())
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def own_redis_townhall(tmp_path: Path, town_name: str) -> Iterator[tuple[RedisServer, TownhallProcess]]:
    """A townhall on a Redis of its own, for tests that kill and restart that Redis."""
    server = RedisServer(tmp_path / "redis-own")
    server.directory.mkdir()
    server.start()
    town_dir = tmp_path / "town"
    town_dir.mkdir()
    write_town(town_dir, town_name, redis_url=server.url)
    proc = TownhallProcess(town_dir).start()
    yield server, proc
    proc.stop()
    server.stop()
