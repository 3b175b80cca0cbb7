"""Fixtures for tests of townhall and of its plugins (loaded by pytest through the ``pytest11`` entry point).

Nothing here touches the machine's Redis at 127.0.0.1:6379: the session runs its own server on a unix
socket in a temporary directory, and every test gets a town name of its own on it. The heavier imports
(redis, the townhall app) happen inside the fixtures, so loading this plugin costs a pytest run that does
not use them next to nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator

import pytest

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis

    from townhall.testing.process import TownhallProcess
    from townhall.testing.redis_server import RedisServer
    from townhall.testing.seed import TownSeed


@pytest.fixture(autouse=True)
def _no_machine_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A REDIS_URL in the developer's shell must never leak into a test town (nor into the processes
    # tests start, which inherit this environment).
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("TINYTOWN_REDIS_PASSWORD", raising=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's private Redis (or Valkey) server; tests may stop, restart or kill it."""
    from townhall.testing.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``unix://…`` of the session's server, restarted first if an earlier test stopped it."""
    if not redis_server.running:
        redis_server.start()
    return redis_server.url


@pytest.fixture
def town_name() -> str:
    """A fresh town name per test: tests share one server but never each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def town_dir(tmp_path: Path, town_name: str, redis_url: str) -> Path:
    """A town directory (``tinytown.toml`` and ``.tt/``) on the session's Redis, launcher ``none``."""
    from townhall.testing.towns import write_town

    write_town(tmp_path, town_name, redis_url=redis_url)
    return tmp_path


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def seed(aredis: aioredis.Redis, town_name: str) -> TownSeed:
    """Writes agents, tasks, messages and missions of this test's town straight through the store."""
    from townhall.testing.seed import TownSeed

    return TownSeed(aredis, town_name)


@pytest.fixture
def townhall(town_dir: Path) -> Iterator[TownhallProcess]:
    """A real townhall process serving ``town_dir`` (which points at the session's Redis)."""
    from townhall.testing.process import TownhallProcess

    proc = TownhallProcess(town_dir).start()
    yield proc
    proc.stop()


@pytest.fixture
def serve(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[Callable[..., TownhallProcess]]:
    """``serve(extra_toml="")`` starts a real townhall on this test's (already seeded) town."""
    from townhall.testing.process import TownhallProcess
    from townhall.testing.towns import write_town

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
    from townhall.testing.process import TownhallProcess
    from townhall.testing.redis_server import RedisServer
    from townhall.testing.towns import write_town

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


@pytest.fixture
def browser() -> Iterator[object]:
    """The system Chromium, headless, driven by Playwright (see :mod:`townhall.testing.browser`): skips
    when it is not installed, fails under CI. One per test: Playwright's sync API keeps an event loop
    running in the thread while it is started, which the async tests after it could not run beside."""
    from townhall.testing.browser import chromium_executable, launch

    chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright.chromium)
        yield chromium
        chromium.close()


@pytest.fixture
def offline_page(browser: object) -> Iterator[object]:
    """A fresh page that may reach loopback only (:class:`townhall.testing.browser.OfflinePage`)."""
    from townhall.testing.browser import offline_page as make

    yield from make(browser)  # type: ignore[arg-type]
