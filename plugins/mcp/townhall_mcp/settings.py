"""``[townhall.mcp]``: whether the HTTP transport is mounted, and where."""

from __future__ import annotations

from typing import Annotated

import msgspec

from townhall.config import CONFIG_FILE, ConfigError, Town, table_config

SECTION = "townhall.mcp"

#: An absolute URL path of one or more plain segments.
MountPath = Annotated[str, msgspec.Meta(pattern=r"^(/[A-Za-z0-9._~-]+)+$")]

#: Prefixes townhall serves itself.
_TAKEN = ("/v1", "/api", "/schema", "/health", "/ready", "/metrics")


class McpSettings(msgspec.Struct, kw_only=True):
    #: Mount the streamable-HTTP transport into ``townhall rest`` (``tt mcp`` works either way).
    enabled: bool = True
    #: Where the transport answers.
    path: MountPath = "/mcp"


def mcp_settings(town: Town) -> McpSettings:
    """The town's ``[townhall.mcp]`` table, checked; a bad value raises :class:`ConfigError` naming the
    file and the key (the core warns about unknown keys: the plugin declares the table)."""
    table = town.raw.get("townhall", {}).get("mcp", {})
    if not isinstance(table, dict):
        raise ConfigError(f"townhall: {CONFIG_FILE}: {SECTION}: expected a table, got {table!r}")
    settings = table_config(town.raw, SECTION, McpSettings)
    if any(settings.path == p or settings.path.startswith(p + "/") for p in _TAKEN):
        raise ConfigError(f"townhall: {CONFIG_FILE}: {SECTION}.path: {settings.path!r} is taken by townhall itself")
    return settings
