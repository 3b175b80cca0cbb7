"""Agent routes: list and inbox (``town.read``); spawn, kill, restart, prune (``agent.manage``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post, route
from litestar.params import FromPath, JSONBody

from townhall.auth import Scope
from townhall.routes.common import problems, services, strict_body
from townhall.routes.fields import AgentName, Label, Uuid
from townhall.routes.views import AgentItem

READ = {"scope": Scope.TOWN_READ}
MANAGE = {"scope": Scope.AGENT_MANAGE}


class AgentListResponse(msgspec.Struct):
    agents: list[AgentItem]
    count: int


class InboxMessageItem(msgspec.Struct):
    id: str
    from_: str = msgspec.field(name="from")
    type: str
    summary: str


class InboxResponse(msgspec.Struct):
    agent: str
    total: int
    urgent: int
    messages: list[InboxMessageItem]
    agent_id: str


class SpawnRequest(msgspec.Struct):
    name: AgentName
    #: A preset name from ``[agent_clis]`` or a built-in one (or that preset's exact command); which names
    #: exist depends on the town's configuration, so the document cannot list them. Unknown → 422.
    cli: str | None = None
    role_id: Label | None = None
    nickname: Label | None = None
    parent_agent_id: Uuid | None = None


class SpawnResponse(msgspec.Struct):
    agent_id: str
    name: str
    cli: str
    role_id: str | None
    nickname: str | None
    parent_agent_id: str | None
    state: str


class AgentActionResponse(msgspec.Struct):
    status: str
    agent: str
    agent_id: str


class PruneRequest(msgspec.Struct):
    all: bool = False


class PruneResponse(msgspec.Struct):
    removed: int
    agents: list[str]


@get("/agents", opt=READ, tags=["agents"], summary="Every registered agent", responses=problems())
async def list_agents(request: Request[Any, Any, Any]) -> AgentListResponse:
    summaries = await services(request).status.agents()
    items = [AgentItem.of(s.agent, s.current_task) for s in summaries]
    return AgentListResponse(agents=items, count=len(items))


@route("/agents/{agent:str}/inbox", http_method=["GET", "POST"], opt=READ, tags=["agents"], status_code=200,
       summary="Peek an agent's inbox (first 100 messages; urgent ones are counted)",
       responses=problems(404, 409))
async def inbox(request: Request[Any, Any, Any], agent: FromPath[str]) -> InboxResponse:
    view = await services(request).messages.inbox(agent)
    return InboxResponse(
        agent=agent, total=view.total, urgent=view.urgent, agent_id=view.agent_id,
        messages=[InboxMessageItem(id=m.id, from_=m.from_, type=m.type, summary=m.summary) for m in view.messages],
    )


@post("/agents", opt=MANAGE, tags=["agents"], status_code=201, responses=problems(409, body=True),
      before_request=strict_body,
      summary="Spawn an agent: record (Starting) and a worker through the configured launcher")
async def spawn(request: Request[Any, Any, Any], data: JSONBody[SpawnRequest]) -> SpawnResponse:
    agent = await services(request).agents.spawn(
        data.name, cli=data.cli, role_id=data.role_id, nickname=data.nickname,
        parent_agent_id=data.parent_agent_id,
    )
    return SpawnResponse(agent_id=agent.id, name=agent.name, cli=agent.cli, role_id=agent.role_id,
                         nickname=agent.nickname, parent_agent_id=agent.parent_agent_id,
                         state=agent.state.rest_name)


@post("/agents/{agent:str}/kill", opt=MANAGE, tags=["agents"], status_code=200, responses=problems(404, 409),
      summary="Stop an agent: stop flag, state Stopped")
async def kill(request: Request[Any, Any, Any], agent: FromPath[str]) -> AgentActionResponse:
    resolved = await services(request).agents.kill(agent)
    return AgentActionResponse(status="stopped", agent=agent, agent_id=resolved.id)


@post("/agents/{agent:str}/restart", opt=MANAGE, tags=["agents"], status_code=200,
      responses=problems(404, 409),
      summary="Restart a Stopped/Error/Cold agent: Idle, rounds 0, stop flag cleared, new worker")
async def restart(request: Request[Any, Any, Any], agent: FromPath[str]) -> AgentActionResponse:
    record = await services(request).agents.restart(agent)
    return AgentActionResponse(status="restarted", agent=agent, agent_id=record.id)


@post("/agents/prune", opt=MANAGE, tags=["agents"], status_code=200, responses=problems(body=True),
      before_request=strict_body,
      summary="Delete Stopped/Error agents (all agents with all=true) and their mailboxes")
async def prune(request: Request[Any, Any, Any], data: JSONBody[PruneRequest]) -> PruneResponse:
    removed = await services(request).agents.prune(all_agents=data.all)
    return PruneResponse(removed=len(removed), agents=[a.name for a in removed])


ROUTES = [list_agents, inbox, spawn, kill, restart, prune]
