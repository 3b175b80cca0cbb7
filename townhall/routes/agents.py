"""Agent routes: list and inbox (``town.read``); spawn, kill, restart, prune (``agent.manage``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post, route
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import OptionalBody, Resource, problems
from townhall.routes.fields import AgentName, Label, Uuid
from townhall.views.agent_actions import CLOSE, INTERRUPT, KILL, RESTART, RESUME, AgentAction
from townhall.views.agents import (
    AgentActionResponse,
    AgentListResponse,
    InboxResponse,
    PruneResponse,
    SpawnResponse,
)


class SpawnRequest(msgspec.Struct):
    name: AgentName
    #: A preset name from ``[agent_clis]`` or a built-in one (or that preset's exact command); which names
    #: exist depends on the town's configuration, so the document cannot list them. Unknown → 422.
    cli: str | None = None
    role_id: Label | None = None
    nickname: Label | None = None
    parent_agent_id: Uuid | None = None


class PruneRequest(msgspec.Struct):
    all: bool = False


def _agent_action_route(action: AgentAction, *, summary: str, description: str) -> HTTPRouteHandler:
    """``POST /v1/agents/{agent}/<action>``: one agent's state change, answered with its id."""

    async def handler(self: Controller, services: Services, agent: FromPath[str]) -> AgentActionResponse:
        response, _ = await action.apply(services, agent)
        return response

    # Litestar names the handler after its function (logs, errors); each route keeps its own name.
    handler.__name__ = handler.__qualname__ = action.name
    return post(f"/{{agent:str}}/{action.name}", status_code=200, responses=problems(404, 409), summary=summary,
                description=description)(handler)


#: ``POST /v1/agents/{agent}/<action>`` of each agent action: the action, the operation's summary and its
#: description.
_ACTION_ROUTES: tuple[tuple[AgentAction, str, str], ...] = (
    (KILL, "Stop an agent: stop flag, state Stopped",
     "Set the stop flag (1 h) and the state `Stopped`; the worker hands back its task and exits 0."),
    (RESTART, "Restart a Stopped/Error/Cold agent: Idle, rounds 0, stop flag cleared, new worker",
     # The line break is the published document's (the text was a docstring once).
     "From `Stopped`, `Error` or `Cold` only: `Idle`, rounds 0, stop flag cleared, and a new worker for the\n"
     "same id through the launcher."),
    (INTERRUPT, "Pause an agent: it takes no new work until resumed (a running task finishes)",
     "State `Paused` from any non-terminal state (a Stopped, Error or Cold agent is a 409). "
     "Activity `⏸️ Interrupted (paused)`, event `agent_interrupted`."),
    (RESUME, "Resume a paused agent: Idle again, stop flag cleared",
     "Only from `Paused` (else 409). Activity `▶️ Resumed`, event `agent_resumed`."),
    (CLOSE, "Close an agent: Draining and the stop flag; its worker ends its step and stops",
     "From any non-terminal state (else 409). Unlike kill, the state is `Draining` until the "
     "worker has stopped. Activity `🔻 Closing (draining then stop)`, event `agent_stopped`."),
)


class AgentController(Resource, path="/agents", tag="agents", scope=Scope.AGENT_MANAGE):
    @get("/", opt={"scope": Scope.TOWN_READ}, summary="Every registered agent", responses=problems())
    async def list_agents(self, services: Services) -> AgentListResponse:
        """Every registered agent, oldest first, with its state and the description of its current task."""
        return AgentListResponse.of(await services.status.agents())

    @route("/{agent:str}/inbox", http_method=["GET", "POST"], opt={"scope": Scope.TOWN_READ}, status_code=200,
           summary="Peek an agent's inbox (first 100 messages; urgent ones are counted)",
           responses=problems(404, 409))
    async def inbox(self, services: Services, agent: FromPath[str]) -> InboxResponse:
        """Counts of the agent's regular and urgent inbox and its first 100 regular messages, summarised;
        nothing is taken out. `agent` is any agent reference (name, nickname, label, id or id prefix)."""
        return InboxResponse.of(agent, await services.messages.inbox(agent))

    @post("/", status_code=201, responses=problems(409, body=True),
          summary="Spawn an agent: record (Starting) and a worker through the configured launcher")
    async def spawn(self, services: Services, data: JSONBody[SpawnRequest],
                    request: Request[Principal, Any, Any]) -> SpawnResponse:
        """Register an agent (state `Starting`) and start its worker through the configured launcher.
        `cli` must name a configured or built-in preset; a request never supplies a command to run."""
        agent = await services.agents.spawn(data.name, cli=data.cli, role_id=data.role_id, nickname=data.nickname,
                                            parent_agent_id=data.parent_agent_id, caller=request.user)
        return SpawnResponse.of(agent)

    # Class attributes, as Litestar collects a controller's handlers.
    kill, restart, interrupt, resume, close = (
        _agent_action_route(action, summary=summary, description=description)
        for action, summary, description in _ACTION_ROUTES)

    @post("/prune", status_code=200, responses=problems(body=True), operation_class=OptionalBody,
          summary="Delete Stopped/Error agents (all agents with all=true) and their mailboxes")
    async def prune(self, services: Services, data: JSONBody[PruneRequest | None] = None) -> PruneResponse:
        """Delete `Stopped`/`Error` agents (every agent with `all`) with their inboxes, activity and stop flag;
        each deletion re-checks the state atomically. The body is optional."""
        removed = await services.agents.prune(all_agents=data.all if data else False)
        return PruneResponse.of(removed)
