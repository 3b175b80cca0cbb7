"""One error shape (RFC 9457 problem details) for every failure, and request ids on every response.

Domain exceptions are mapped to status codes here and nowhere else; services never know about HTTP.
"""

from __future__ import annotations

import logging
import re
import os
from http import HTTPStatus
from typing import Any, Callable

import msgspec
import redis.exceptions
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Message, Scope

log = logging.getLogger("townhall.http")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://tinytown.dev/errors/"
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
    """The request's id: a sane incoming ``X-Request-ID``, else a new one; stable for the request."""
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
        rid = rid or os.urandom(16).hex()  # as random as uuid4().hex, a fraction of the cost
        state["request_id"] = rid
    return rid


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: Litestar calls it for every response, router 404/405 included."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers") or [])
        headers.append((b"x-request-id", request_id_of(scope).encode()))
        message["headers"] = headers


class DomainErrorMapping(msgspec.Struct):
    status: int
    #: Optional extra problem fields (e.g. ambiguity candidates) taken from the exception.
    extra: Callable[[Exception], dict[str, Any]] | None = None


#: Filled by :func:`register_domain_error`; checked in MRO order.
_DOMAIN: dict[type[Exception], DomainErrorMapping] = {}


def register_domain_error(
    exc_type: type[Exception], status: int, extra: Callable[[Exception], dict[str, Any]] | None = None
) -> None:
    _DOMAIN[exc_type] = DomainErrorMapping(status=status, extra=extra)


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
    candidates: list[str] | None = None,
    title: str | None = None,
) -> Response[Problem]:
    body = Problem(
        type=f"{TYPE_BASE}{status}",
        title=title or _title(status),
        status=status,
        detail=detail,
        instance=request.scope.get("path", ""),
        request_id=request_id_of(request.scope),
        errors=errors or [],
        candidates=candidates or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The single exception handler registered for ``Exception``."""
    for klass in type(exc).__mro__:
        mapping = _DOMAIN.get(klass)
        if mapping is not None:
            extra = mapping.extra(exc) if mapping.extra else {}
            return problem_response(request, mapping.status, str(exc), **extra)
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
        if exc.status_code == 400 and _is_malformed(exc):
            return problem_response(request, 400, str(exc.detail), errors=errors)
        return problem_response(request, 422, f"Invalid request: {detail}", errors=errors)
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in (exc.headers or {}).items()}
        status = exc.status_code
        detail = exc.detail if exc.detail and exc.detail != _title(status) else _default_detail(status, request)
        return problem_response(request, status, detail, headers=headers or None)
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        redis.exceptions.BusyLoadingError)):
        log.warning("redis unavailable: %s", exc)
        return problem_response(request, 503, f"Redis unavailable: {exc}", headers={"Retry-After": "1"})
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "Internal server error")


def _default_detail(status: int, request: Request[Any, Any, Any]) -> str:
    if status == 404:
        return f"No route for {request.url.path}"
    if status == 405:
        return f"Method {request.method} not allowed on {request.url.path}"
    if status == 413:
        return "Request body too large"
    return _title(status)


def _is_malformed(exc: ValidationException) -> bool:
    return "malformed" in str(exc.detail).lower() or "decode" in str(exc.detail).lower()


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = str(item.get("key", "body"))
        # msgspec reports nested paths inside the message: "... - at `$.tags[0]`".
        m = re.search(r" - at `\$\.?([^`]*)`", message)
        if m:
            field = m.group(1) or field
            message = message[: m.start()]
        if field == "data" and "unknown field" in message:
            unknown = re.search(r"`([^`]+)`", message)
            field = unknown.group(1) if unknown else field
        elif field == "data" and "missing required field" in message.lower():
            missing = re.search(r"`([^`]+)`", message)
            field = missing.group(1) if missing else field
        errors.append(FieldError(field=field, message=message, source=str(item.get("source", "body"))))
    return errors
