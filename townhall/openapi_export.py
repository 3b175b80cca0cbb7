"""The OpenAPI document of townhall, built from the code (``townhall openapi``, the drift test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from townhall.app import create_app
from townhall.config import Town, TownConfig
from townhall.plugins import load_plugins
from townhall.redis_endpoint import RedisEndpoint
from townhall.runtime import build_runtime


def openapi_document() -> dict[str, Any]:
    """The schema of an app for a config-less dummy town (default settings, installed plugins).
    Nothing connects to Redis: the client is created but never used."""
    town = Town(root=Path("."), root_as_given=".", config=TownConfig(name="town"))
    app = create_app(build_runtime(town, load_plugins(),
                                   endpoint=RedisEndpoint(url="redis://127.0.0.1:6379", explicit=True)))
    return msgspec.to_builtins(app.openapi_schema.to_schema())


def openapi_yaml() -> str:
    return yaml.dump(openapi_document(), default_flow_style=False, sort_keys=True, allow_unicode=True)
