"""Every ``/v1`` route handler (each declares its scope; the app mounts them under ``/v1``)."""

from collections import defaultdict

from litestar import Response
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_204_NO_CONTENT

import townhall.http.domain_problems  # noqa: F401  (registers domain error → status mappings)
from townhall.routes import agents, backlog, messages, missions, recovery, tasks, town


def _options_for_shared_paths(handlers: list[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """Explicit ``OPTIONS`` handlers for paths served by several handlers (``GET``/``POST /agents``).

    Litestar 2.25 makes the automatic ``OPTIONS`` handler when it registers a path's first handler
    and keeps it when more handlers join the path, so its ``Allow`` header names only the first
    handler's methods. Registered ahead of the others, these answer with every method of the path."""
    methods: dict[str, set[str]] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)
    for handler in handlers:
        for path in handler.paths:
            methods[path] |= set(handler.http_methods)
            count[path] += 1
    return [_options(path, ", ".join(sorted(methods[path] | {"OPTIONS"}))) for path in methods if count[path] > 1]


def _options(path: str, allow: str) -> HTTPRouteHandler:
    def options() -> Response[None]:
        return Response(content=None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return HTTPRouteHandler(path=path, http_method=[HttpMethod.OPTIONS], include_in_schema=False,
                            sync_to_thread=False, name=f"options:{path}")(options)


_HANDLERS: list = [
    *town.ROUTES,
    *agents.ROUTES,
    *tasks.ROUTES,
    *backlog.ROUTES,
    *messages.ROUTES,
    *recovery.ROUTES,
    *missions.ROUTES,
]

V1_ROUTES: list = [*_options_for_shared_paths(_HANDLERS), *_HANDLERS]
