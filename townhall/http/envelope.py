"""What happens around every request, in one ASGI layer and one ``before_send`` hook.

The layer (:class:`RequestEnvelope`, around every matched route): notes when the request came in (the
metrics plugin times responses from it: :func:`received_at`), answers 415 for a body that is not JSON,
runs the guard (:func:`townhall.http.guard.authorize`) and bounds the request by ``request_timeout_ms``.

The hook (:func:`response_hook`, every response, router 404/405 included): the ``X-Request-ID`` header,
``Cache-Control: no-store`` on answers to a principal, and the audit line.

Why one of each (docs/performance.md has the profile): Litestar awaits every middleware layer and every
hook separately (a hook twice per response: start and body), checks each ``ASGIMiddleware`` for
exclusions per request, and copies the route handler for every guard it calls; ``asyncio.timeout`` arms
and cancels a timer per request where :class:`Deadlines` keeps one timer for all of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, WebSocketException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from townhall.deadline_queue import DeadlineQueue
from townhall.http.audit import audit_response
from townhall.http.guard import authorize, no_store_when_authenticated
from townhall.problems import add_request_id_header

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: ``scope["state"]`` keys of this module.
_RECEIVED = "townhall.received_at"
_STARTED = "townhall.response_started"


class RequestTimeout(HTTPException):
    status_code = 504


class UnsupportedMediaType(HTTPException):
    status_code = 415


def received_at(scope: Scope) -> float | None:
    """``time.perf_counter()`` when the envelope saw the request (``None``: it matched no route)."""
    state = scope.get("state")
    return state.get(_RECEIVED) if state else None


class Deadlines:
    """Cancels requests still running at their deadline, one timer for every request in flight (a
    :class:`~townhall.deadline_queue.DeadlineQueue` of their tasks). A request is cut at most one tick
    (a twentieth of the timeout, 10–250 ms) after its deadline."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._queue: DeadlineQueue[asyncio.Task[Any]] = DeadlineQueue(
            timeout, min(max(timeout / 20, 0.01), 0.25), self._cancel)
        self._expired: set[asyncio.Task[Any]] = set()

    def add(self, task: asyncio.Task[Any]) -> None:
        self._queue.begin(task)

    def done(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; ``True`` if it was cancelled for its deadline."""
        self._queue.end(task)
        if self._expired and task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()


class RequestEnvelope:
    """The middleware factory (``AppConfig.middleware``): wraps each route's ASGI app."""

    def __init__(self, timeout_ms: int) -> None:
        self.deadlines = Deadlines(timeout_ms / 1000)
        self.timeout_ms = timeout_ms

    def __call__(self, app: ASGIApp) -> ASGIApp:
        deadlines = self.deadlines
        detail = f"Request did not complete within {self.timeout_ms} ms"
        current_task = asyncio.current_task

        async def envelope(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                # A plugin's websocket route: the same guard (auth, rate limits, scope) as any route;
                # no deadline or content type applies to a connection that lasts.
                try:
                    await authorize(ASGIConnection(scope, receive, send), scope["route_handler"])
                except HTTPException as refused:  # closed with 4000 + the status: 4401, 4403, 4429
                    raise WebSocketException(detail=refused.detail, code=4000 + refused.status_code) from None
                await app(scope, receive, send)
                return
            scope["state"][_RECEIVED] = time.perf_counter()
            task = current_task()
            assert task is not None
            deadlines.add(task)
            try:
                if scope["method"] in _BODY_METHODS:
                    _check_content_type(scope)
                handler = scope["route_handler"]
                await authorize(ASGIConnection(scope, receive, send), handler)
                if handler.opt.get("stream"):
                    # A stream (a followed log) lasts as long as its client wants; the deadline is for requests.
                    deadlines.done(task)
                await app(scope, receive, send)
            except asyncio.CancelledError:
                if not deadlines.done(task):
                    raise
                task.uncancel()
                if scope["state"].get(_STARTED):
                    raise TimeoutError(detail) from None
                raise RequestTimeout(detail=detail) from None
            finally:
                deadlines.done(task)

        return envelope


def response_hook(*, audit: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """The app's one ``before_send`` hook (``audit``: write audit lines)."""

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        scope.setdefault("state", {})[_STARTED] = True
        add_request_id_header(message, scope)
        no_store_when_authenticated(message, scope)
        if audit:
            audit_response(message, scope)

    return before_send


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
