"""``tt mcp``: the town's MCP server on stdin/stdout, for an agent running on this machine.

It opens the town from its own ``tinytown.toml`` and Redis, like every ``tt`` command, and so acts with
the rights of whoever runs it: every scope, no API key (anyone who can run ``tt`` here can already
read the config and reach the town's Redis). Its tool calls are audited as principal ``local:<user>``.
stdout carries the protocol only; logs go to stderr.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

import click

from townhall.auth import ALL_SCOPES, Principal
from townhall.cli.common import run_in_town, town_dir
from townhall.runtime import Runtime

from townhall_mcp.settings import mcp_settings

if TYPE_CHECKING:  # the SDK is imported when `tt mcp` runs, not whenever `tt` loads its commands
    from mcp.server.context import ServerRequestContext

    from townhall_mcp.access import Caller, CallerOf


def local_caller() -> CallerOf:
    from townhall_mcp.access import Caller

    principal = Principal(id=f"local:{getpass.getuser()}", scopes=ALL_SCOPES, mode="stdio")

    def caller_of(request_ctx: ServerRequestContext[Any, Any]) -> Caller:
        return Caller(principal=principal, request_id=f"stdio-{request_ctx.request_id}", channel="stdio")
    return caller_of


async def serve_stdio(runtime: Runtime) -> None:
    from townhall_mcp.server import build_server

    mcp_settings(runtime.town)  # a bad [townhall.mcp] table fails here too, not only in townhall rest
    await build_server(runtime, local_caller()).run_stdio_async()


@click.command("mcp")
@click.pass_context
def mcp_command(ctx: click.Context) -> None:
    """Serve the town over MCP on stdin/stdout (e.g. `claude mcp add tinytown -- tt --town DIR mcp`)."""
    run_in_town(town_dir(ctx), serve_stdio)
