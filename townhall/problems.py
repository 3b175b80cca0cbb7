"""One error shape (RFC 9457 problem details) for every failure, and request ids on every response.

Which failure gets which problem is decided in :mod:`townhall.http.errors`; services never know about HTTP.
"""

from __future__ import annotations

import os
import re
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.types import Scope

from townhall.problem_types import RFC9110_TITLES, type_uri

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class _RandomIds:
    """128-bit random hex ids, as random as ``uuid4().hex``, drawn from one ``os.urandom`` read per 256
    ids (a system call per response was a measurable part of a probe's time). A forked child starts a
    pool of its own, so two processes never hand out the same ids. ``pool`` is the list itself: a
    caller pops an id from it while it holds one and calls :meth:`refill` otherwise (a call less per
    response)."""

    def __init__(self) -> None:
        self.pool: list[str] = []
        os.register_at_fork(after_in_child=self.pool.clear)

    def refill(self) -> str:
        """Fill the pool and take one."""
        # hex() puts a space after every 16 bytes and split() cuts there: the ids in two C calls.
        self.pool.extend(os.urandom(16 * 256).hex(" ", 16).split())
        return self.pool.pop()


_ids = _RandomIds()
_pool, _refill = _ids.pool, _ids.refill


class FieldError(msgspec.Struct):
    field: str
    message: str
    source: str = "body"


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, as every error body of townhall."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldError] = []
    candidates: list[str] = []


def request_id_of(scope: Scope) -> str:
    """The request's id: a sane incoming ``X-Request-ID`` (1–128 characters of ``A-Za-z0-9._:@/+=-``,
    anything else is dropped, never echoed), else the server's own id; stable for the request."""
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    rid = state.get("request_id")
    if rid is None:
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1").strip()
                if _SANE_ID.match(candidate):
                    rid = candidate
                break
        rid = state["request_id"] = rid or server_request_id_of(scope)
    return rid


def server_request_id_of(scope: Scope) -> str:
    """The id the server gave the request, whatever the client sent (the audit log records both)."""
    state = scope.setdefault("state", {})
    sid = state.get("server_request_id")
    if sid is None:
        sid = state["server_request_id"] = _pool.pop() if _pool else _refill()
    return sid


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
    candidates: list[str] | None = None,
) -> Response[Problem]:
    body = Problem(
        type=type_uri(status),
        title=status_title(status),
        status=status,
        detail=detail,
        instance=request.scope.get("path", ""),
        request_id=request_id_of(request.scope),
        errors=errors or [],
        candidates=candidates or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_title(status: int) -> str:
    if status in RFC9110_TITLES:
        return RFC9110_TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
