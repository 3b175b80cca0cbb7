"""A town's services for tests that call them directly (no server), on the test's Redis client."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from townhall.config import load_town
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices
from townhall.testing.towns import write_town

#: A CLI preset whose run echoes the prompt: what these tests spawn agents with.
TEST_CLI = '[agent_clis.test-cli]\nname = "test-cli"\ncommand = "cat"\n'


def town_services(town_dir: Path, town_name: str, redis_url: str, redis: aioredis.Redis,
                  extra: str = "") -> TownServices:
    """Write a town (the ``test-cli`` preset and ``extra`` config) to ``town_dir``; its services on ``redis``."""
    write_town(town_dir, town_name, redis_url=redis_url, extra=TEST_CLI + extra)
    return build_services(load_town(town_dir), redis, load_plugins().registry)
