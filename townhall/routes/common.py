"""What every ``/v1`` route module shares: access to the town services and the declared problem
responses (so the OpenAPI document lists every error a route can give, in our problem shape)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.datastructures import ResponseSpec

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
    503: "Redis unavailable or the request timed out",
}

#: Every /v1 route can answer these (malformed request, auth, rate limit, Redis outage). 400 is
#: listed everywhere so that Litestar's own 400 schema never shows up in the document.
COMMON = (400, 401, 403, 429, 503)


def problems(*codes: int, body: bool = False) -> dict[int, ResponseSpec]:
    """Problem responses of a route: the common ones, ``codes``, and the body errors with ``body``."""
    wanted = set(COMMON) | set(codes) | ({400, 413, 415, 422} if body else set())
    return {
        code: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, description=_WHY[code],
                           generate_examples=False)
        for code in sorted(wanted)
    }


def services(request: Request[Any, Any, Any]) -> TownServices:
    ctx: AppContext = request.app.state.ctx
    return ctx.services


def context(request: Request[Any, Any, Any]) -> AppContext:
    return request.app.state.ctx
