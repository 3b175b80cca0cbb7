"""The OpenAPI document of townhall, built from the code (``townhall openapi``, the drift test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from townhall.config import Town, TownConfig


def openapi_document() -> dict[str, Any]:
    """The schema of an app for a config-less dummy town (default settings, installed plugins).
    Nothing connects to Redis: the client is created but never used."""
    from townhall.app import build_context, create_app
    from townhall.redis_endpoint import RedisEndpoint

    town = Town(root=Path("."), root_as_given=".", config=TownConfig(name="town"))
    ctx = build_context(town, endpoint=RedisEndpoint(url="redis://127.0.0.1:6379", explicit=True))
    app = create_app(ctx)
    return msgspec.to_builtins(app.openapi_schema.to_schema())


def openapi_yaml() -> str:
    return yaml.dump(openapi_document(), default_flow_style=False, sort_keys=True, allow_unicode=True)
