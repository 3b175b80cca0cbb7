"""The streamable-HTTP transport, mounted into townhall's own app at ``[townhall.mcp] path``.

Being a route of the app, it shares the port, TLS/mTLS, request ids, the request deadline, the audit of
401/403 answers and the rate limits with REST. Its guard authenticates exactly as a ``/v1`` route's does
(``townhall.http.guard.authenticate``: 401 with the Bearer challenge, as problem+json); which scope a
request needs depends on the tool it calls, so scopes are checked per tool (:mod:`townhall_mcp.access`).
Every MCP request is a POST, so it counts against the caller's mutating-request budget.

The SDK runs in stateless mode with JSON responses: each POST is answered on its own, with no session
to keep between requests (so no session of one caller can be used by another, and several townhall
processes behind one address behave alike) and no long-lived event stream for the deadline to cut.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import BaseRouteHandler, asgi
from litestar.types import Guard, Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings

from townhall.context import AppContext
from townhall.http.guard import authenticate
from townhall.problems import request_id_of

from townhall_mcp.access import Caller, CallerOf
from townhall_mcp.server import build_server


def authenticated(ctx: AppContext) -> Guard:
    """The core guard's authentication and rate limit, without its per-route scope."""
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        limiter = ctx.rate_limiter
        if limiter is not None:
            limiter.check_auth_allowed(connection)
        principal = await authenticate(ctx, connection)
        connection.scope["user"] = principal
        if limiter is not None:
            await limiter.check(connection, principal)
    return guard


def http_caller(mount_path: str) -> CallerOf:
    def caller_of(request_ctx: ServerRequestContext[Any, Any]) -> Caller:
        # The request this MCP message came in (the SDK's Starlette view of the ASGI scope the guard saw).
        scope = request_ctx.request.scope  # type: ignore[union-attr]
        return Caller(principal=scope["user"], request_id=request_id_of(scope), channel=mount_path)
    return caller_of


def mount_mcp(app_config: AppConfig, context: AppContext, path: str) -> None:
    """Add the ``path`` route and run the SDK's request manager inside the app's lifespan."""
    server = build_server(context.runtime, http_caller(path))
    # No DNS-rebinding Host check of the SDK's: townhall's own bind rules and auth guard this route, as
    # they guard /v1 (a loopback-only town in auth mode none is as open to local pages over MCP as REST).
    # Only its request manager is used (the Starlette app around it is not mounted: Litestar routes here).
    server.streamable_http_app(stateless_http=True, json_response=True,
                               max_request_body_size=context.town.config.townhall.max_body_bytes,
                               transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    manager = server.session_manager

    @asgi(path, guards=[authenticated(context)], copy_scope=False, name="mcp")
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # Stateless: no session to delete and nothing the server would push on a GET event stream
            # (which would otherwise stay open until the request deadline cuts it).
            raise MethodNotAllowedException(headers={"Allow": "POST"})
        await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

    @asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app_config.route_handlers.append(mcp_endpoint)
    app_config.lifespan.append(running)
