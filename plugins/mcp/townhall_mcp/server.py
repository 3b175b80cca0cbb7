"""The town's MCP server (the SDK's :class:`MCPServer`), the same for every transport."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from townhall import __version__
from townhall.runtime import Runtime

from townhall_mcp.access import CallerOf, Gate
from townhall_mcp.resources import register_resources
from townhall_mcp.tools import register_tools

INSTRUCTIONS = (
    "Tinytown: a town of AI coding agents coordinated through Redis. Read tinytown://town (or call status) "
    "first; put shared work in the backlog (add_backlog), hand work to one agent with assign_task, and use "
    "the plan_work prompt to split a goal into tasks. Each tool needs the scope its REST route needs."
)


def build_server(runtime: Runtime, caller_of: CallerOf) -> MCPServer:
    """Tools, resources and prompts on ``runtime``'s services; ``caller_of`` says who sends a request."""
    server: MCPServer = MCPServer(name=f"tinytown-{runtime.town.name}", title="Tinytown", version=__version__,
                                  instructions=INSTRUCTIONS, log_level="WARNING")
    gate = Gate(caller_of)
    server.middleware.append(gate.middleware)
    register_tools(server, runtime, gate)
    register_resources(server, runtime, gate)
    return server
