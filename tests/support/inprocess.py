"""An in-process townhall app with Litestar's AsyncTestClient (for cases a real socket adds nothing to)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from litestar.testing import AsyncTestClient

from townhall.app import build_context, create_app
from townhall.config import load_town
from townhall.plugins import make_plugin_manager


@asynccontextmanager
async def app_client(town_dir: Path, extra: list[tuple[str, object]] | None = None) -> AsyncIterator[AsyncTestClient]:
    town = load_town(town_dir)
    ctx = build_context(town, pm=make_plugin_manager(extra=extra))
    async with AsyncTestClient(app=create_app(ctx), raise_server_exceptions=False) as client:
        yield client
