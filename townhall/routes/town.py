"""``GET /v1/town`` and ``GET /v1/status`` (scope ``town.read``)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.params import FromQuery

from townhall.auth import Scope
from townhall.http.dependencies import Context
from townhall.routes.common import Resource, problems
from townhall.routes.views import AgentFields, TaskView


class TownResponse(msgspec.Struct):
    name: str
    root: str
    redis_url: str


class AgentStatusItem(AgentFields):
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


class TownController(Resource, path="/", tag="town", scope=Scope.TOWN_READ):
    # These take the whole running town (for the redacted Redis URL) rather than the services as well:
    # Litestar resolves two dependencies of one handler in a task group, which doubles this route's cost.
    @get("/town", summary="Town name, root and (redacted) Redis URL", responses=problems())
    async def town(self, context: Context) -> TownResponse:
        info = context.services.status.info(context.runtime.endpoint.redacted)
        return TownResponse(name=info.name, root=info.root, redis_url=info.redis_url)

    @get("/status", responses=problems(422),
         summary="Town status with every agent; deep=true adds recent activity and the current task")
    async def status(self, context: Context, deep: FromQuery[bool] = False) -> StatusResponse:
        result = await context.services.status.status(context.runtime.endpoint.redacted, deep=deep)
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
