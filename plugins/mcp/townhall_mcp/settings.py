"""``[townhall.mcp]``: whether the HTTP transport is mounted, and where."""

from __future__ import annotations

import tomllib
from typing import Annotated, Any

import msgspec

from townhall.config import CONFIG_FILE, ConfigError, Town

SECTION = "townhall.mcp"

#: An absolute URL path of one or more plain segments, outside the REST API's own prefixes.
MountPath = Annotated[str, msgspec.Meta(pattern=r"^(/[A-Za-z0-9._~-]+)+$")]

_RESERVED = ("/v1", "/api", "/schema", "/health", "/ready", "/metrics")


class McpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Mount the streamable-HTTP transport into ``townhall rest`` (``tt mcp`` works either way).
    enabled: bool = True
    #: Where the transport answers.
    path: MountPath = "/mcp"


def mcp_settings(town: Town) -> McpSettings:
    """The town's ``[townhall.mcp]`` table, checked; a bad value raises :class:`ConfigError` naming the
    file and the key."""
    table = _section(town)
    try:
        settings = msgspec.convert(table, type=McpSettings, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"townhall: {CONFIG_FILE}: {_explain(str(exc))}") from None
    if any(settings.path == p or settings.path.startswith(p + "/") for p in _RESERVED):
        raise ConfigError(f"townhall: {CONFIG_FILE}: {SECTION}.path: {settings.path!r} is taken by townhall itself")
    return settings


def _section(town: Town) -> dict[str, Any]:
    # The core keeps no generic plugin-table mechanism yet, so the table is read from the file here; this is
    # the one function to swap for the core's once it offers one.
    path = town.root / CONFIG_FILE
    if not path.is_file():  # a town built in memory (the OpenAPI export): defaults
        return {}
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    table = raw.get("townhall", {}).get("mcp", {})
    if not isinstance(table, dict):
        raise ConfigError(f"townhall: {CONFIG_FILE}: {SECTION}: expected a table")
    return table


def _explain(message: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.path``` as ``townhall.mcp.path: expected `str`, got `int```."""
    what, _, where = message.partition(" - at `$")
    if message.startswith("Object contains unknown field"):
        return f"{SECTION}.{message.split('`')[1]}: unknown key"
    key = where.rstrip("`").lstrip(".")
    return f"{SECTION}.{key}: {what[:1].lower()}{what[1:]}" if key else f"{SECTION}: {message}"
