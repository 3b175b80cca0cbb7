"""Agent routes: list and inbox (``town.read``); spawn, kill, restart, prune (``agent.manage``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post, route
from litestar.params import FromPath, JSONBody

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import OptionalBody, Resource, problems
from townhall.routes.fields import AgentName, Label, Uuid
from townhall.routes.views import AgentItem


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


class AgentController(Resource, path="/agents", tag="agents", scope=Scope.AGENT_MANAGE):
    @get("/", opt={"scope": Scope.TOWN_READ}, summary="Every registered agent", responses=problems())
    async def list_agents(self, services: Services) -> AgentListResponse:
        items = [AgentItem.of(s.agent, s.current_task) for s in await services.status.agents()]
        return AgentListResponse(agents=items, count=len(items))

    @route("/{agent:str}/inbox", http_method=["GET", "POST"], opt={"scope": Scope.TOWN_READ}, status_code=200,
           summary="Peek an agent's inbox (first 100 messages; urgent ones are counted)",
           responses=problems(404, 409))
    async def inbox(self, services: Services, agent: FromPath[str]) -> InboxResponse:
        view = await services.messages.inbox(agent)
        return InboxResponse(
            agent=agent, total=view.total, urgent=view.urgent, agent_id=view.agent_id,
            messages=[InboxMessageItem(id=m.id, from_=m.from_, type=m.type, summary=m.summary)
                      for m in view.messages],
        )

    @post("/", status_code=201, responses=problems(409, body=True),
          summary="Spawn an agent: record (Starting) and a worker through the configured launcher")
    async def spawn(self, services: Services, data: JSONBody[SpawnRequest],
                    request: Request[Principal, Any, Any]) -> SpawnResponse:
        agent = await services.agents.spawn(data.name, cli=data.cli, role_id=data.role_id, nickname=data.nickname,
                                            parent_agent_id=data.parent_agent_id, caller=request.user)
        return SpawnResponse(agent_id=agent.id, name=agent.name, cli=agent.cli, role_id=agent.role_id,
                             nickname=agent.nickname, parent_agent_id=agent.parent_agent_id,
                             state=agent.state.rest_name)

    @post("/{agent:str}/kill", status_code=200, responses=problems(404, 409),
          summary="Stop an agent: stop flag, state Stopped")
    async def kill(self, services: Services, agent: FromPath[str]) -> AgentActionResponse:
        resolved = await services.lifecycle.kill(agent)
        return AgentActionResponse(status="stopped", agent=agent, agent_id=resolved.id)

    @post("/{agent:str}/restart", status_code=200, responses=problems(404, 409),
          summary="Restart a Stopped/Error/Cold agent: Idle, rounds 0, stop flag cleared, new worker")
    async def restart(self, services: Services, agent: FromPath[str]) -> AgentActionResponse:
        record = await services.lifecycle.restart(agent)
        return AgentActionResponse(status="restarted", agent=agent, agent_id=record.id)

    @post("/prune", status_code=200, responses=problems(body=True), operation_class=OptionalBody,
          summary="Delete Stopped/Error agents (all agents with all=true) and their mailboxes")
    async def prune(self, services: Services, data: JSONBody[PruneRequest | None] = None) -> PruneResponse:
        removed = await services.agents.prune(all_agents=data.all if data else False)
        return PruneResponse(removed=len(removed), agents=[a.name for a in removed])
