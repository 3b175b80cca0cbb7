"""An in-process townhall app with Litestar's AsyncTestClient (for cases a real socket adds nothing to)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from litestar.testing import AsyncTestClient

from townhall.app import create_app
from townhall.config import load_town
from townhall.plugins import load_plugins
from townhall.runtime import build_runtime


@asynccontextmanager
async def app_client(town_dir: Path, extra: list[tuple[str, object]] | None = None) -> AsyncIterator[AsyncTestClient]:
    town = load_town(town_dir)
    app = create_app(build_runtime(town, load_plugins(extra=extra)))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client
