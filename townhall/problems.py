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
from litestar.types import Message, Scope

from townhall.problem_types import RFC9110_TITLES, type_uri

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


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
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1").strip()
                if _SANE_ID.match(candidate):
                    rid = candidate
                break
        rid = rid or server_request_id_of(scope)
        state["request_id"] = rid
    return rid


def server_request_id_of(scope: Scope) -> str:
    """The id the server gave the request, whatever the client sent (the audit log records both)."""
    state = scope.setdefault("state", {})
    sid = state.get("server_request_id")
    if sid is None:
        sid = state["server_request_id"] = os.urandom(16).hex()  # as random as uuid4().hex, cheaper
    return sid


def add_request_id_header(message: Message, scope: Scope) -> None:
    """On a response start (the app's ``before_send`` hook calls it for every response, router 404/405
    included)."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers") or [])
        headers.append((b"x-request-id", request_id_of(scope).encode()))
        message["headers"] = headers


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
