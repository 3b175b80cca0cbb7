"""ASGI middleware around every matched route: the request deadline and the JSON content-type rule."""

from __future__ import annotations

import asyncio

from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class RequestTimeout(HTTPException):
    status_code = 504


class UnsupportedMediaType(HTTPException):
    status_code = 415


class RequestEnvelope(ASGIMiddleware):
    """Bounds the whole request by ``request_timeout_ms`` (504 problem if nothing was sent yet) and
    answers 415 for a request body that is not JSON.

    Redis writes that must not be seen half-done are single Lua calls or MULTI blocks, so cancelling a
    handler at the deadline never leaves a half-written record.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout = timeout_ms / 1000

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] != "http":
            await next_app(scope, receive, send)
            return
        if scope["method"] in _BODY_METHODS:
            _check_content_type(scope)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await next_app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            raise RequestTimeout(
                detail=f"Request did not complete within {int(self.timeout * 1000)} ms"
            ) from None


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
