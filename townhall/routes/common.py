"""What every route module shares: the resource controller base, the declared problem responses (so the
OpenAPI document lists every error a route can give, in our problem shape) and the operation of a route
whose body is optional."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation

from townhall.auth import Scope
from townhall.problems import PROBLEM_JSON, Problem


class Resource(Controller):
    """The routes of one resource. Its class line says what they share, e.g.
    ``class AgentController(Resource, path="/agents", tag="agents", scope=Scope.AGENT_MANAGE)``:
    the path prefix, the OpenAPI tag and the scope the guard demands (none: public). A handler that
    needs another scope declares its own ``opt={"scope": ...}``, which Litestar lets win."""

    def __init_subclass__(cls, *, path: str, tag: str, scope: Scope | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.path = path
        cls.tags = [tag]
        if scope is not None:
            cls.opt = {"scope": scope}

_WHY = {
    400: "Malformed request (e.g. a body that is not valid JSON)",
    401: "Missing or invalid credentials",
    403: "The credentials lack the route's scope",
    404: "Unknown agent, task or mission",
    409: "Ambiguous agent reference or id prefix (candidates listed), or a state that forbids the action",
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


@dataclass
class OptionalBody(Operation):
    """The operation of a route whose body may be left out (Litestar always marks a body required)."""

    def __post_init__(self) -> None:
        if self.request_body is not None:
            self.request_body.required = False
