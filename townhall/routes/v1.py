"""The ``/v1`` router: every authenticated resource, their shared security, services and body decoding."""

from collections import defaultdict

from litestar import Controller, Response, Router
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.utils import join_paths

from townhall.http.body import StrictJSONBody
from townhall.context import AppContext
from townhall.http.dependencies import v1_dependencies
from townhall.routes.agents import AgentController
from townhall.routes.backlog import BacklogController
from townhall.routes.events import EventController
from townhall.routes.logs import LogController
from townhall.routes.messages import MessageController
from townhall.routes.missions import MissionController
from townhall.routes.recovery import RecoveryController
from townhall.routes.tasks import TaskController
from townhall.routes.town import TownController

#: Each declares its path, tag and scope; the guard (:mod:`townhall.http.guard`) enforces the scope.
CONTROLLERS: list[type[Controller]] = [
    TownController,
    AgentController,
    TaskController,
    BacklogController,
    MessageController,
    RecoveryController,
    MissionController,
    LogController,
    EventController,
]

#: Every /v1 operation accepts a bearer token or an API key (the document says so per operation).
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def v1_router(ctx: AppContext) -> Router:
    return Router(
        "/v1",
        route_handlers=[*_options_for_every_path(CONTROLLERS), *CONTROLLERS],
        security=SECURITY,
        dependencies=v1_dependencies(ctx),
        dto=StrictJSONBody,
        return_dto=None,  # responses are encoded as without a DTO
    )


def _options_for_every_path(controllers: list[type[Controller]]) -> list[HTTPRouteHandler]:
    """Explicit, public ``OPTIONS`` handlers for every path of the controllers.

    Litestar 2.25 makes an automatic ``OPTIONS`` handler when it registers a path's first handler, and
    (1) keeps it when more handlers join the path, so its ``Allow`` header names only the first handler's
    methods (``GET``/``POST /agents``), and (2) makes it a handler of the controller, so it inherits the
    controller's scope and would demand credentials. Registered ahead of the controllers, these take its
    place: they answer with every method of the path and declare no scope."""
    methods: dict[str, set[str]] = defaultdict(set)
    for controller in controllers:
        for handler in _handlers_of(controller):
            for path in handler.paths:
                methods[join_paths([controller.path, path])] |= set(handler.http_methods)
    return [_options(path, ", ".join(sorted(allowed | {"OPTIONS"}))) for path, allowed in methods.items()]


def _handlers_of(controller: type[Controller]) -> list[HTTPRouteHandler]:
    return [value for value in vars(controller).values() if isinstance(value, HTTPRouteHandler)]


def _options(path: str, allow: str) -> HTTPRouteHandler:
    def options() -> Response[None]:
        return Response(content=None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return HTTPRouteHandler(path=path, http_method=[HttpMethod.OPTIONS], include_in_schema=False,
                            sync_to_thread=False, name=f"options:{path}")(options)
