"""Resources (``tinytown://…``, JSON documents an agent can read into its context) and prompts."""

# No ``from __future__ import annotations``: the SDK reads these signatures at registration.

import json
from typing import Awaitable, Callable, TypeVar

from mcp.server.mcpserver import MCPServer

from townhall.auth import Scope
from townhall.domain_errors import AgentNotFound
from townhall.runtime import Runtime

from townhall_mcp.access import Gate, request_error
from townhall_mcp.views import JSON, agent_status_view, agent_view, plain, status_view, task_view

JSON_TYPE = "application/json"

Reader = TypeVar("Reader", bound=Callable[..., Awaitable[str]])


def _text(value: JSON) -> str:
    return json.dumps(value, indent=2)


def register_resources(server: MCPServer, runtime: Runtime, gate: Gate) -> None:
    services = runtime.services

    def resource(uri: str, description: str) -> Callable[[Reader], Reader]:
        return server.resource(uri, description=description, mime_type=JSON_TYPE)

    @resource("tinytown://town", "The town: name, root, every agent with its state and inbox lengths")
    async def town() -> str:
        async with gate.enter("resource:tinytown://town", Scope.TOWN_READ, request_error):
            return _text(status_view(await services.status.status(runtime.endpoint.redacted), deep=False))

    @resource("tinytown://agents", "Every registered agent with its state and current task")
    async def agents() -> str:
        async with gate.enter("resource:tinytown://agents", Scope.TOWN_READ, request_error):
            return _text({"agents": [agent_view(s.agent, s.current_scope) for s in await services.status.agents()]})

    @resource("tinytown://agents/{name}", "One agent (by name, nickname, short id or id), with recent activity")
    async def agent(name: str) -> str:
        async with gate.enter("resource:tinytown://agents/{name}", Scope.TOWN_READ, request_error):
            ref = await services.agents.resolve(name)
            found = [s for s in (await services.status.status(runtime.endpoint.redacted, deep=True)).agents
                     if s.agent.id == ref.id]
            if not found:  # the supervisor mailbox: an address, not an agent
                raise AgentNotFound(name)
            return _text(agent_status_view(found[0], deep=True))

    @resource("tinytown://tasks/{task_id}", "One task record")
    async def task(task_id: str) -> str:
        async with gate.enter("resource:tinytown://tasks/{task_id}", Scope.TOWN_READ, request_error):
            return _text(task_view(await services.tasks.get(task_id)))

    @resource("tinytown://backlog", "The shared backlog, oldest first")
    async def backlog() -> str:
        async with gate.enter("resource:tinytown://backlog", Scope.TOWN_READ, request_error):
            return _text({"backlog": plain(await services.backlog.list())})

    @server.prompt(name="plan_work", title="Plan work for this town")
    async def plan_work(goal: str = "") -> str:
        """The town's current state and how to split a goal into backlog tasks its agents can take."""
        async with gate.enter("prompt:plan_work", Scope.TOWN_READ, request_error):
            status = status_view(await services.status.status(runtime.endpoint.redacted), deep=False)
            queued = plain(await services.backlog.list())
        return _plan(goal, status, queued)


_HOW = """\
How to plan work for this town:
1. Read the state above: which agents are Idle or Working, what each is on, how full the inboxes are, and
   what already waits in the backlog (do not queue it twice).
2. Split the goal into tasks that one agent can finish alone in one sitting, each with a concrete outcome
   ("add X to Y and a test for it"), not an activity ("work on X"). Order them so that none needs another's
   unfinished result; where one must wait, say so in its description.
3. Put shared work in the backlog with the add_backlog tool (tags such as "backend" or "docs" help agents
   pick); idle agents claim from it. Hand a task to one agent directly with assign_task only when it must
   be that agent (it holds the context, or the task continues its current one).
4. If more work is queued than agents can take, say how many agents to add (scaling_signal gives the
   town's own recommendation); spawning needs the agent.manage scope.
"""


def _plan(goal: str, status: JSON, backlog: list[JSON]) -> str:
    target = f"Goal: {goal}" if goal.strip() else "Goal: (none given: propose the next useful work)"
    return (f"{target}\n\nCurrent town state:\n{_text(status)}\n\n"
            f"Backlog ({len(backlog)} tasks):\n{json.dumps(backlog, indent=2)}\n\n{_HOW}")
