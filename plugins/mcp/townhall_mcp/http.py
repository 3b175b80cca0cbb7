"""The streamable-HTTP transport, mounted into townhall's own app at ``[townhall.mcp] path``.

Being a route of the app, it shares the port, TLS/mTLS, request ids, the request deadline, the audit of
401/403 answers and the rate limits with REST. Its guard authenticates exactly as a ``/v1`` route's does
(``townhall.http.guard.authenticate``: 401 with the Bearer challenge, as problem+json); which scope a
request needs depends on the tool it calls, so scopes are checked per tool (:mod:`townhall_mcp.access`).
Every MCP request is a POST, so it counts against the caller's mutating-request budget.

The SDK runs in stateless mode with JSON responses: each POST is answered on its own, with no session
to keep between requests (so no session of one caller can be used by another, and several townhall
processes behind one address behave alike) and no long-lived event stream for the deadline to cut.

The SDK is imported, and its request manager started, at the first MCP request (in a thread, so other
requests go on meanwhile): importing it is about a second of every townhall start, which most starts
never use.
"""

from __future__ import annotations

import asyncio
import importlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import BaseRouteHandler, asgi
from litestar.types import Guard, Receive, Scope, Send

from townhall.context import AppContext
from townhall.http.guard import authenticate

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager


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


class LazyManager:
    """The SDK's request manager, built and run (in a task of its own, until :meth:`close`) by the
    first request that needs it."""

    def __init__(self, context: AppContext, path: str) -> None:
        self._context, self._path = context, path
        self._manager: StreamableHTTPSessionManager | None = None
        self._starting: asyncio.Future[StreamableHTTPSessionManager] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def get(self) -> StreamableHTTPSessionManager:
        if self._manager is None:
            # One start for every request that waits, and shielded: a request cut by its deadline
            # meanwhile must not leave a second manager to be started by the next one.
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start())
            try:
                self._manager = await asyncio.shield(self._starting)
            except BaseException:
                starting = self._starting
                if starting.done() and (starting.cancelled() or starting.exception() is not None):
                    self._starting = None  # it failed: the next request tries again
                raise
        return self._manager

    async def _start(self) -> StreamableHTTPSessionManager:
        transport = await asyncio.to_thread(importlib.import_module, "townhall_mcp.http_transport")
        manager = transport.request_manager(self._context, self._path)
        running = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                running.set()
                await self._stop.wait()

        task = asyncio.create_task(run())
        waiting = asyncio.create_task(running.wait())
        await asyncio.wait([waiting, task], return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():
            waiting.cancel()
            await task  # it ended before it ran: its error is the answer (and not close()'s)
        self._task = task
        return manager

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def mount_mcp(app_config: AppConfig, context: AppContext, path: str) -> None:
    """Add the ``path`` route; the SDK's request manager runs inside the app's lifespan once used."""
    lazy = LazyManager(context, path)

    @asgi(path, guards=[authenticated(context)], copy_scope=False, name="mcp")
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # Stateless: no session to delete and nothing the server would push on a GET event stream
            # (which would otherwise stay open until the request deadline cuts it).
            raise MethodNotAllowedException(headers={"Allow": "POST"})
        manager = await lazy.get()
        await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

    @asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await lazy.close()

    app_config.route_handlers.append(mcp_endpoint)
    app_config.lifespan.append(running)
