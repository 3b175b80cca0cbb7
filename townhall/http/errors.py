"""How every failure becomes a problem (RFC 9457): first the table of domain errors, then the handlers of
the framework's own errors (invalid input, HTTP errors, Redis outages, bugs).

:data:`EXCEPTION_HANDLERS` is the app's ``exception_handlers``; Litestar answers an exception with the
handler of the nearest class in its MRO, so a subclass of a listed error answers like it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import msgspec

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from townhall.domain_errors import (
    REDIS_OUTAGE_ERRORS,
    AgentDown,
    AmbiguousAgent,
    AmbiguousId,
    Conflict,
    InvalidInput,
    NotFound,
    PresetNotAllowed,
    RedisUnavailable,
)
from townhall.problems import FieldError, Problem, problem_response, status_title
from townhall.services.scaling import ScalingUnavailable

log = logging.getLogger("townhall.http")

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True)
class ProblemRule:
    """How one domain error answers. The detail is the error's message; the problem ``type`` is
    ``…/errors/{status}`` (the contract names problem types by status, so a rule has no type of its own)."""

    status: int
    #: ``Retry-After`` seconds, for an outage the client should simply retry.
    retry_after_secs: int | None = None
    #: The problem's ``candidates`` (an ambiguous reference), taken from the error.
    candidates: Callable[[Any], list[str]] | None = None
    #: The problem's ``errors`` (the fields at fault), taken from the error and the request.
    errors: Callable[[Any, AnyRequest], list[FieldError]] | None = None

    def response(self, request: AnyRequest, exc: Exception) -> Response[Problem]:
        return problem_response(
            request, self.status, str(exc),
            headers={"Retry-After": str(self.retry_after_secs)} if self.retry_after_secs else None,
            candidates=self.candidates(exc) if self.candidates else None,
            errors=self.errors(exc, request) if self.errors else None,
        )


#: Domain error → problem (contract §4.2). Services raise these; nothing else maps them.
DOMAIN_PROBLEMS: Mapping[type[Exception], ProblemRule] = {
    NotFound: ProblemRule(404),  # AgentNotFound, TaskNotFound, MissionNotFound, BacklogTaskGone
    AmbiguousAgent: ProblemRule(409, candidates=lambda exc: exc.candidates),
    AmbiguousId: ProblemRule(409, candidates=lambda exc: exc.candidates),
    AgentDown: ProblemRule(409),
    Conflict: ProblemRule(409),
    PresetNotAllowed: ProblemRule(403),
    InvalidInput: ProblemRule(422, errors=lambda exc, request: [
        FieldError(field=exc.field, message=exc.message, source=_source_of(exc.field, request))]),
    RedisUnavailable: ProblemRule(503, retry_after_secs=1),
    # An unmeasurable queue is a transient outage, not a server bug: tell the scaler to retry.
    ScalingUnavailable: ProblemRule(503, retry_after_secs=1),
}


def invalid_request(request: AnyRequest, exc: ValidationException) -> Response[Problem]:
    """Input that does not match the declared types (body, path or query): 422 naming the fields.

    Litestar raises this only for well-formed input; a body that is not JSON at all is a plain
    ``ClientException`` (400), answered by :func:`http_error`."""
    errors = [_missing_body(request) if _is_missing_body(e) else e for e in field_errors(exc)]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    return problem_response(request, 422, f"Invalid request: {detail}", errors=errors)


def http_error(request: AnyRequest, exc: HTTPException) -> Response[Problem]:
    """Litestar's and our own HTTP errors (400, 401, 403, 404, 405, 413, 415, 429, 504) keep their
    status and headers (``WWW-Authenticate``, ``Retry-After``, ``Allow``)."""
    status = exc.status_code
    detail = exc.detail if exc.detail and exc.detail != status_title(status) else _default_detail(status, request)
    return problem_response(request, status, detail, headers=dict(exc.headers or {}) or None)


def redis_outage(request: AnyRequest, exc: Exception) -> Response[Problem]:
    log.warning("redis unavailable: %s", exc)
    return DOMAIN_PROBLEMS[RedisUnavailable].response(request, RedisUnavailable(exc))


def unexpected(request: AnyRequest, exc: Exception) -> Response[Problem]:
    # Litestar logs unhandled errors only in debug mode.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **{exc_type: rule.response for exc_type, rule in DOMAIN_PROBLEMS.items()},
    **dict.fromkeys(REDIS_OUTAGE_ERRORS, redis_outage),
    ValidationException: invalid_request,
    HTTPException: http_error,
    Exception: unexpected,
}


def _source_of(field: str, request: AnyRequest) -> str:
    """Where a field a service refused came from: services name fields, not HTTP locations."""
    if field in request.path_params:
        return "path"
    if field in request.query_params:
        return "query"
    return "body"


def _is_missing_body(error: FieldError) -> bool:
    # Litestar reports a required body that was not sent as the KeyError of its own argument name.
    return error.field == "data" and error.message == "'data'"


def _missing_body(request: AnyRequest) -> FieldError:
    """Say which body the route expects, rather than Litestar's ``data: 'data'``."""
    field = request.route_handler.parsed_data_field
    annotation = field.annotation if field is not None else None
    described = ""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        parts = [f"{f.encode_name}{'' if f.required else ' (optional)'}"
                 for f in msgspec.structs.fields(annotation)]
        described = f" with {', '.join(parts)}" if parts else ""
    return FieldError(field="body", message=f"a JSON object{described} is required; no body was sent",
                      source="body")


def _default_detail(status: int, request: AnyRequest) -> str:
    if status == 404:
        return f"No route for {request.url.path}"
    if status == 405:
        return f"Method {request.method} not allowed on {request.url.path}"
    if status == 413:
        return "Request body too large"
    return status_title(status)


def field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = str(item.get("key", "body"))
        # msgspec's errors carry no structured location: it names nested paths inside the message
        # ("... - at `$.tags[0]`") and the unknown or missing field in backticks.
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
        source = item.get("source", "body")
        # Litestar gives path and query parameters' source as its ParamType enum.
        errors.append(FieldError(field=field, message=message, source=str(getattr(source, "value", source))))
    return errors
