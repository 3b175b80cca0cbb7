"""``GET /v1/town`` and ``GET /v1/status`` (scope ``town.read``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromQuery

from townhall.auth import Scope
from townhall.routes.common import context, problems, services
from townhall.routes.views import TaskView

READ = {"scope": Scope.TOWN_READ}


class TownResponse(msgspec.Struct):
    name: str
    root: str
    redis_url: str


class AgentStatusItem(msgspec.Struct):
    id: str
    name: str
    nickname: str | None
    role_id: str | None
    parent_agent_id: str | None
    spawn_mode: str
    cli: str
    state: str
    rounds_completed: int
    tasks_completed: int
    inbox_len: int
    urgent_len: int
    current_scope: str | None
    #: ``deep=true`` only: the agent's newest activity lines (newest first, at most 5).
    recent_activity: list[str] | msgspec.UnsetType = msgspec.UNSET
    #: ``deep=true`` only: the record of ``current_task`` (null when none or gone).
    current_task: TaskView | None | msgspec.UnsetType = msgspec.UNSET


class StatusResponse(msgspec.Struct):
    name: str
    root: str
    redis_url: str
    agent_count: int
    agents: list[AgentStatusItem]


@get("/town", opt=READ, tags=["town"], summary="Town name, root and (redacted) Redis URL",
     responses=problems())
async def town(request: Request[Any, Any, Any]) -> TownResponse:
    info = services(request).status.info(context(request).endpoint.redacted)
    return TownResponse(name=info.name, root=info.root, redis_url=info.redis_url)


@get("/status", opt=READ, tags=["town"], responses=problems(422),
     summary="Town status with every agent; deep=true adds recent activity and the current task")
async def status(request: Request[Any, Any, Any], deep: FromQuery[bool] = False) -> StatusResponse:
    result = await services(request).status.status(context(request).endpoint.redacted, deep=deep)
    items = []
    for s in result.agents:
        a = s.agent
        item = AgentStatusItem(
            id=a.id, name=a.name, nickname=a.nickname, role_id=a.role_id, parent_agent_id=a.parent_agent_id,
            spawn_mode=a.spawn_mode.value, cli=a.cli, state=a.state.rest_name,
            rounds_completed=a.rounds_completed, tasks_completed=a.tasks_completed,
            inbox_len=s.lengths.inbox, urgent_len=s.lengths.urgent,
            current_scope=s.current_task.description if s.current_task else None,
        )
        if deep:
            item.recent_activity = s.activity or []
            item.current_task = TaskView.of(s.current_task) if s.current_task else None
        items.append(item)
    info = result.town
    return StatusResponse(name=info.name, root=info.root, redis_url=info.redis_url, agent_count=len(items),
                          agents=items)


ROUTES = [town, status]
