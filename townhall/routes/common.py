"""What every ``/v1`` route module shares: access to the town services and the declared problem
responses (so the OpenAPI document lists every error a route can give, in our problem shape)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation

from townhall.context import AppContext
from townhall.problems import PROBLEM_JSON, Problem
from townhall.services.town import TownServices

_WHY = {
    400: "Malformed request (e.g. a body that is not valid JSON)",
    401: "Missing or invalid credentials",
    403: "The credentials lack the route's scope",
    404: "Unknown agent, task or mission",
    409: "Ambiguous agent reference (candidates listed) or a state that forbids the action",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Invalid input; `errors[].field` names the field",
    429: "Rate limit exceeded (see Retry-After)",
    503: "Redis unavailable (see Retry-After)",
    504: "The request did not complete within `request_timeout_ms`",
}

#: Every /v1 route can answer these (malformed request, auth, rate limit, Redis outage, deadline). 400
#: is listed everywhere so that Litestar's own 400 schema never shows up in the document.
COMMON = (400, 401, 403, 429, 503, 504)


def problems(*codes: int, body: bool = False) -> dict[int, ResponseSpec]:
    """Problem responses of a route: the common ones, ``codes``, and the body errors with ``body``."""
    wanted = set(COMMON) | set(codes) | ({400, 413, 415, 422} if body else set())
    return {
        code: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, description=_WHY[code],
                           generate_examples=False)
        for code in sorted(wanted)
    }


_STRICT_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of every route with a JSON body: the body must have the declared JSON types.

    Litestar converts bodies leniently (``0`` or ``"true"`` pass as booleans), so a value of the wrong
    type would be accepted where the document says it is invalid; this decodes the body once more with
    msgspec's strict rules and answers 422 naming the field. Empty and malformed bodies are left to
    Litestar (a missing body, 400)."""
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    raw = await request.body()
    if not raw.strip():
        return
    decoder = _STRICT_DECODERS.get(field.annotation)
    if decoder is None:
        decoder = _STRICT_DECODERS.setdefault(field.annotation, msgspec.json.Decoder(field.annotation, strict=True))
    try:
        decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ValidationException(detail="Invalid request body",
                                  extra=[{"message": str(exc), "key": "data", "source": "body"}]) from None
    except msgspec.DecodeError:
        return


@dataclass
class OptionalBody(Operation):
    """The operation of a route whose body may be left out (Litestar always marks a body required)."""

    def __post_init__(self) -> None:
        if self.request_body is not None:
            self.request_body.required = False


def services(request: Request[Any, Any, Any]) -> TownServices:
    ctx: AppContext = request.app.state.ctx
    return ctx.services


def context(request: Request[Any, Any, Any]) -> AppContext:
    return request.app.state.ctx
