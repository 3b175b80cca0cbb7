"""The dashboard's routes: the page at ``/ui`` (public: it holds no town data, only the town's name and
auth mode, as ``/ready`` does), its panels (``town.read``, through the core's guard like any ``/v1`` route)
and its own script and stylesheet.

The page never builds HTML from data itself: panels are rendered here by Jinja (which escapes every value)
and the script swaps them in; the script writes event lines with ``textContent`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ValidationException
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from townhall.auth import Principal, Scope
from townhall.domain import TaskState
from townhall.http.dependencies import Context

from townhall_dashboard.panels import Panel, Viewer, agent_rows, backlog_rows, task_rows, town_view

BASE = "/ui"
STATIC = f"{BASE}/static"
_STATIC_FILES = Path(__file__).parent / "static"

#: Script, styles and connections from this server only; no inline script or style, no framing, no
#: plugins, forms post nowhere else. Only the dashboard's responses carry it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]

STATES = [s.value for s in TaskState]


def task_state_filter(request: Request[Any, Any, Any]) -> TaskState | None:
    """``?state=``: a task state or nothing. (A handler parameter cannot be named ``state`` in Litestar,
    and an alias would name the Python parameter in the 422.)"""
    value = request.query_params.get("state") or None
    if value is not None and value not in STATES:
        raise ValidationException(detail="Unknown task state", extra=[{
            "key": "state", "source": "query",
            "message": f"unknown task state {value!r}; expected one of {', '.join(STATES)}"}])
    return TaskState(value) if value else None


ALL_PANELS = list(Panel)


class DashboardController(Controller):
    path = BASE
    include_in_schema = False
    response_headers = SECURITY_HEADERS

    @get("/", name="dashboard")
    async def page(self, context: Context) -> Template:
        return Template(template_name="page.html.j2", context={
            "town": context.town.name, "auth_mode": context.town.config.townhall.auth.mode,
            "task_states": STATES, "base": BASE, "static": STATIC,
        })

    @get("/panels", opt={"scope": Scope.TOWN_READ})
    async def panels(self, context: Context, request: Request[Principal, Any, Any],
                     show: Annotated[list[Panel] | None, Parameter(description="panels to render")] = None,
                     ) -> Template:
        task_state = task_state_filter(request)
        gathered = []
        for panel in show or ALL_PANELS:
            data: dict[str, Any] = {"name": panel.value, "view": None, "rows": [],
                                    "state": task_state.value if task_state else None}
            if panel is Panel.TOWN:
                data["view"] = await town_view(context)
            elif panel is Panel.AGENTS:
                data["rows"] = await agent_rows(context)
            elif panel is Panel.TASKS:
                data["rows"] = await task_rows(context, task_state)
            else:
                data["rows"] = await backlog_rows(context)
            gathered.append(data)
        return Template(template_name="panels.html.j2",
                        context={"viewer": Viewer.of(request.user), "panels": gathered})


def dashboard_routes() -> list[Any]:
    @get("/", include_in_schema=False, name="root-to-dashboard")
    async def root() -> Redirect:
        return Redirect(path=BASE)

    assets = create_static_files_router(path=STATIC, directories=[_STATIC_FILES], include_in_schema=False,
                                                name="dashboard-assets")
    return [DashboardController, root, assets]
