"""Townhall plugin ``mcp``: the town as a Model Context Protocol server, on the official ``mcp`` SDK.

* streamable HTTP at ``[townhall.mcp] path`` (default ``/mcp``) inside ``townhall rest``, behind the
  configured auth mode; each tool needs the scope of its REST twin;
* stdio with ``tt mcp``, with the rights of the local user.

Configuration (``tinytown.toml``)::

    [townhall.mcp]
    enabled = true     # mount the HTTP transport (default: true when this plugin is installed)
    path = "/mcp"

See ``docs/mcp.md`` for connecting clients and the list of tools, resources and prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import click

from townhall import hookimpl
from townhall.registry import ConfigSection

from townhall_mcp.settings import SECTION, McpSettings, mcp_settings
from townhall_mcp.stdio import mcp_command

if TYPE_CHECKING:  # Litestar is imported by an app that mounts this, not by every `tt` command
    from litestar.config.app import AppConfig

    from townhall.context import AppContext

__all__ = ["McpSettings", "mcp_settings"]


@hookimpl
def townhall_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection(table=SECTION, config_type=McpSettings, summary="the MCP transport at /mcp"))


@hookimpl
def townhall_setup_app(app_config: AppConfig, context: AppContext) -> None:
    settings = mcp_settings(context.town)
    if settings.enabled:
        # The SDK is imported here, when an app mounts it, not whenever plugins load: every `tt`
        # command loads them, and importing the SDK was a second of each.
        from townhall_mcp.http import mount_mcp

        mount_mcp(app_config, context, settings.path)


@hookimpl
def townhall_register_commands(tt: click.Group, townhall: click.Group) -> None:
    tt.add_command(mcp_command)
