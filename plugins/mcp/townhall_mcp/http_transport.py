"""The SDK's side of the streamable-HTTP transport: its request manager for townhall's ``/mcp`` route.

Imported by :mod:`townhall_mcp.http` at the first MCP request, not when the app is built.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from townhall.context import AppContext
from townhall.problems import request_id_of

from townhall_mcp.access import Caller, CallerOf
from townhall_mcp.server import build_server


def http_caller(mount_path: str) -> CallerOf:
    def caller_of(request_ctx: ServerRequestContext[Any, Any]) -> Caller:
        # The request this MCP message came in (the SDK's Starlette view of the ASGI scope the guard saw).
        scope = request_ctx.request.scope  # type: ignore[union-attr]
        return Caller(principal=scope["user"], request_id=request_id_of(scope), channel=mount_path)
    return caller_of


def request_manager(context: AppContext, path: str) -> StreamableHTTPSessionManager:
    """The SDK's manager of HTTP requests for the town's MCP server (stateless, JSON responses)."""
    server = build_server(context.runtime, http_caller(path))
    # No DNS-rebinding Host check of the SDK's: townhall's own bind rules and auth guard this route, as
    # they guard /v1 (a loopback-only town in auth mode none is as open to local pages over MCP as REST).
    # Only its request manager is used (the Starlette app around it is not mounted: Litestar routes here).
    server.streamable_http_app(stateless_http=True, json_response=True,
                               max_request_body_size=context.town.config.townhall.max_body_bytes,
                               transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return server.session_manager
