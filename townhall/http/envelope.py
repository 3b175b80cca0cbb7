"""What happens around every request, in one ASGI layer and one ``before_request`` hook.

The layer (:meth:`Envelope.install`, around Litestar's whole chain: CORS, exception handling, routing)
sees every HTTP request, router 404/405 included: it notes when the request came in (the metrics
plugin times responses from it: :func:`received_at`), bounds the request by ``request_timeout_ms`` (504
when it runs out) and, at the response start, adds the ``X-Request-ID`` header, ``Cache-Control:
no-store`` on answers to a principal, calls the response observers (``AppContext.response_observers``)
and writes the audit line.

The admission (:meth:`Envelope.admit`, once the route is known) answers 415 for a body that is not JSON
and runs the guard (:class:`townhall.http.guard.Gate`). It is the app's ``before_request`` hook for
HTTP route handlers, and a Litestar guard of websocket and ASGI route handlers (static files, MCP), which
``before_request`` does not reach.

Why this shape (docs/performance.md has the profile): a Litestar middleware is a layer per route plus a
second exception-handling layer Litestar adds around it; each ``before_send`` hook is awaited twice per
response; a Litestar guard costs a copy of the route handler per call; ``asyncio.timeout`` arms and
cancels a timer per request where :class:`Deadlines` keeps one timer for all of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, WebSocketException
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from townhall.context import AppContext
from townhall.deadline_queue import DeadlineQueue
from townhall.http.audit import MUTATING, REFUSALS, audit_response
from townhall.http.guard import Gate
from townhall.problems import request_id_of

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: ``scope["state"]`` keys of this module. ``RECEIVED_AT``: what :func:`received_at` reads, there in the
#: scope of every request a response observer sees.
RECEIVED_AT = "townhall.received_at"
_TIMED_OUT = "townhall.timed_out"


class RequestTimeout(HTTPException):
    status_code = 504


class UnsupportedMediaType(HTTPException):
    status_code = 415


def received_at(scope: Scope) -> float | None:
    """``time.perf_counter()`` when the envelope saw the request (``None`` outside the envelope)."""
    state = scope.get("state")
    return state.get(RECEIVED_AT) if state else None


class Deadlines:
    """Cancels requests still running at their deadline, one timer for every request in flight (a
    :class:`~townhall.deadline_queue.DeadlineQueue` of their tasks). A request is cut at most one tick
    (a twentieth of the timeout, 10–250 ms) after its deadline."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._queue: DeadlineQueue[asyncio.Task[Any]] = DeadlineQueue(
            timeout, min(max(timeout / 20, 0.01), 0.25), self._cancel)
        # The queue's own methods: a call less per request each.
        #: ``add(task)``: the deadline of ``task`` starts now.
        self.add = self._queue.begin
        #: ``end(task)``: forget ``task``'s deadline (a request that ended).
        self.end = self._queue.end
        #: Tasks cancelled for their deadline whose request has not ended yet.
        self.expired: set[asyncio.Task[Any]] = set()

    def done(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; ``True`` if it was cancelled for its deadline."""
        self._queue.end(task)
        if self.expired and task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        self.expired.add(task)
        task.cancel()


class Envelope:
    """One app's envelope: build it, pass :meth:`admit` as the app's ``before_request``, then
    :meth:`install` it on the built app."""

    def __init__(self, ctx: AppContext, *, audit: bool) -> None:
        timeout_ms = ctx.town.config.townhall.request_timeout_ms
        self.deadlines = Deadlines(timeout_ms / 1000)
        self.detail = f"Request did not complete within {timeout_ms} ms"
        self.gate = Gate(ctx)
        # The list itself: observers a plugin adds while the app is being built count too.
        self.observers = ctx.response_observers
        self.audit = audit

    async def admit(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """``before_request`` (and the HTTP side of the websocket/ASGI guard): the content type, then the
        guard. Returns nothing, so the handler runs."""
        scope = connection.scope
        if scope["state"].get(_TIMED_OUT):
            raise RequestTimeout(detail=self.detail)
        if scope["method"] in _BODY_METHODS:
            _check_content_type(scope)
        handler = scope["route_handler"]
        authorizing = self.gate.admit(connection, handler)
        if authorizing is not None:
            await authorizing
        if handler.opt.get("stream"):
            # A stream (a followed log) lasts as long as its client wants; the deadline is for requests.
            task = asyncio.current_task()
            assert task is not None
            self.deadlines.done(task)

    async def _guard(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        """The admission of websocket and ASGI route handlers, as a Litestar guard."""
        if connection.scope["type"] == "http":
            await self.admit(connection)
            return
        # A plugin's websocket route: the same guard (auth, rate limits, scope) as any route; no deadline or
        # content type applies to a connection that lasts.
        try:
            authorizing = self.gate.admit(connection, handler)
            if authorizing is not None:
                await authorizing
        except HTTPException as refused:  # closed with 4000 + the status: 4401, 4403, 4429
            raise WebSocketException(detail=refused.detail, code=4000 + refused.status_code) from None

    @staticmethod
    def unadmitted_routes(app: Litestar) -> list[str]:
        """``"METHOD /path"`` of every HTTP route whose layers set a ``before_request`` of their own: it
        would replace the app's, the admission (Litestar calls the nearest layer's only)."""
        return [f"{method} {route.path}" for route in app.routes if isinstance(route, HTTPRoute)
                for handler in route.route_handlers if handler.resolve_before_request() is not app.before_request
                for method in sorted(handler.http_methods)]

    def install(self, app: Litestar) -> None:
        """Wrap ``app``'s own chain in the envelope's layer, and guard its websocket and ASGI routes."""
        for route in app.routes:
            if isinstance(route, (WebSocketRoute, ASGIRoute)):
                # Litestar resolved the handler's guards when it registered the route; the list it
                # returns is the one its route calls.
                route.route_handler.resolve_guards().insert(0, self._guard)
        app.asgi_handler = self._layer(app.asgi_handler)

    def _layer(self, inner: ASGIApp) -> ASGIApp:
        deadlines, detail, current_task, clock = self.deadlines, self.detail, asyncio.current_task, time.perf_counter
        expired = deadlines.expired
        on_start = self._on_start

        async def envelope(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            scope["state"][RECEIVED_AT] = clock()
            task = current_task()
            assert task is not None
            deadlines.add(task)
            started = False

            # Not a coroutine: it hands back the server's own send to await, one coroutine less per
            # message.
            def send_and_mark(message: Message) -> Awaitable[None]:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    on_start(message, scope)
                return send(message)

            try:
                await inner(scope, receive, send_and_mark)
            except asyncio.CancelledError:
                if not deadlines.done(task):
                    raise
                task.uncancel()
                if started:
                    raise TimeoutError(detail) from None
                # The 504 is the app's own answer: the request goes through Litestar's chain once more,
                # marked, and its admission refuses it before anything runs; so it is a problem like any
                # error, with the CORS headers a browser needs to read it.
                scope["state"][_TIMED_OUT] = True
                await inner(scope, receive, send_and_mark)
            finally:
                deadlines.end(task)
                if expired:  # a request that swallowed its cancellation is not remembered for ever
                    expired.discard(task)

        return envelope

    def _on_start(self, message: Message, scope: Scope) -> None:
        headers = message.get("headers") or ()
        request_id = (b"x-request-id", request_id_of(scope).encode())
        if scope.get("user") is not None and not any(name.lower() == b"cache-control" for name, _ in headers):
            # An answer given to a principal is theirs; no shared cache may keep it.
            message["headers"] = [*headers, request_id, (b"cache-control", b"no-store")]
        else:
            message["headers"] = [*headers, request_id]
        for observe in self.observers:
            observe(message, scope)
        # Which answers get an audit line (docs/security.md): every refusal, and every answer to a
        # request that changes the town.
        if self.audit and (message["status"] in REFUSALS
                           or (scope["method"] in MUTATING and scope["path"].startswith("/v1"))):
            audit_response(message, scope)


def _check_content_type(scope: Scope) -> None:
    content_type = b""
    has_body = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
        elif name == b"content-length":
            has_body = value.strip() not in (b"", b"0")
        elif name == b"transfer-encoding":
            has_body = True
    if not content_type:
        if has_body:
            raise UnsupportedMediaType(detail="Expected request with `Content-Type: application/json`")
        return
    if content_type != b"application/json" and not content_type.endswith(b"+json"):
        raise UnsupportedMediaType(detail="Expected request with `Content-Type: application/json`")
