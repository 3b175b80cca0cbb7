"""The tools: each one is the service call of its REST twin, under the same scope.

Arguments are declared with the limits of :mod:`townhall.services.inputs`, so a client sees them in the
tool's JSON schema and a bad value is refused, naming the argument, before any service runs; the
services check once more (they have other callers) and their refusals name the argument too.
"""

# No ``from __future__ import annotations``: the SDK reads these signatures at registration to build the
# JSON schemas, and closures' annotations must be objects, not strings to resolve later.

from typing import Annotated, Awaitable, Callable, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from townhall.auth import Scope
from townhall.routes.fields import MessageKindName
from townhall.runtime import Runtime
from townhall.services.inputs import AGENT_NAME_PATTERN, MAX_LABEL_CHARS, MAX_TAGS, MAX_TEXT_CHARS, UUID_PATTERN
from townhall.services.scaling import scaling_signal

from townhall_mcp.access import Gate
from townhall_mcp.views import JSON, agent_view, plain, status_view, task_view

AgentRef = Annotated[str, Field(min_length=1, max_length=256,
                                description="An agent: its name, nickname, 'nickname [role]' label, short id or id")]
TaskId = Annotated[str, Field(pattern=UUID_PATTERN, description="A task id (UUID)")]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Label = Annotated[str, Field(max_length=MAX_LABEL_CHARS)]
AgentName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=AGENT_NAME_PATTERN,
                                 description="Letters, digits, '.', '_' and '-', starting with a letter or digit")]
Tags = Annotated[list[Label], Field(max_length=MAX_TAGS)]

Tool = TypeVar("Tool", bound=Callable[..., Awaitable[JSON]])

READ = ToolAnnotations(read_only_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False)
MANAGE = ToolAnnotations(read_only_hint=False, destructive_hint=True)


def register_tools(server: MCPServer, runtime: Runtime, gate: Gate) -> None:
    services = runtime.services

    def tool(annotations: ToolAnnotations, name: str | None = None) -> Callable[[Tool], Tool]:
        return server.tool(name=name, annotations=annotations, structured_output=True)

    @tool(READ)
    async def status(deep: bool = False) -> JSON:
        """The town and every agent (state, inbox lengths, current task); deep=true adds each agent's
        recent activity and its current task record."""
        async with gate.enter("tool:status", Scope.TOWN_READ):
            return status_view(await services.status.status(runtime.endpoint.redacted, deep=deep), deep=deep)

    @tool(READ)
    async def list_agents() -> JSON:
        """Every registered agent with its state and current task."""
        async with gate.enter("tool:list_agents", Scope.TOWN_READ):
            agents = [agent_view(s.agent, s.current_scope) for s in await services.status.agents()]
        return {"agents": agents, "count": len(agents)}

    @tool(WRITE)
    async def spawn_agent(name: AgentName, cli: Label | None = None, role_id: Label | None = None,
                          nickname: Label | None = None,
                          parent_agent_id: Annotated[str | None, Field(pattern=UUID_PATTERN)] = None) -> JSON:
        """Create an agent (state Starting) and start its worker through the town's launcher. cli names a
        preset of [agent_clis] or a built-in one (default: the town's default CLI)."""
        async with gate.enter("tool:spawn_agent", Scope.AGENT_MANAGE):
            agent = await services.agents.spawn(name, cli=cli, role_id=role_id, nickname=nickname,
                                                parent_agent_id=parent_agent_id)
        return agent_view(agent, None)

    @tool(MANAGE)
    async def kill_agent(agent: AgentRef) -> JSON:
        """Stop an agent: set its stop flag and mark it Stopped."""
        async with gate.enter("tool:kill_agent", Scope.AGENT_MANAGE):
            ref = await services.lifecycle.kill(agent)
        return {"status": "stopped", "agent": agent, "agent_id": ref.id}

    @tool(WRITE)
    async def restart_agent(agent: AgentRef) -> JSON:
        """Restart a Stopped, Error or Cold agent: Idle, rounds reset, stop flag cleared, a new worker."""
        async with gate.enter("tool:restart_agent", Scope.AGENT_MANAGE):
            record = await services.lifecycle.restart(agent)
        return {"status": "restarted", "agent": agent, "agent_id": record.id}

    @tool(WRITE)
    async def assign_task(agent: AgentRef, task: Text) -> JSON:
        """Create a task assigned to an agent and put it in the agent's inbox."""
        async with gate.enter("tool:assign_task", Scope.TOWN_WRITE):
            result = await services.tasks.assign(agent, task)
        return {"task_id": result.task.id, "agent_id": result.agent.id, "agent_name": result.agent.name}

    @tool(READ)
    async def get_task(task_id: TaskId) -> JSON:
        """One task record: description, state, assignee, times, result, tags."""
        async with gate.enter("tool:get_task", Scope.TOWN_READ):
            return task_view(await services.tasks.get(task_id))

    @tool(READ)
    async def pending_tasks() -> JSON:
        """Assigned work still waiting in agents' inboxes (the first 100 messages of each)."""
        async with gate.enter("tool:pending_tasks", Scope.TOWN_READ):
            tasks = plain(await services.tasks.pending())
        return {"tasks": tasks, "count": len(tasks)}

    @tool(READ)
    async def list_backlog() -> JSON:
        """The shared backlog, oldest first: tasks any idle agent may claim."""
        async with gate.enter("tool:list_backlog", Scope.TOWN_READ):
            items = plain(await services.backlog.list())
        return {"backlog": items, "count": len(items)}

    @tool(WRITE)
    async def add_backlog(description: Text, tags: Tags | None = None) -> JSON:
        """Add a pending task to the shared backlog."""
        async with gate.enter("tool:add_backlog", Scope.TOWN_WRITE):
            task = await services.backlog.add(description, tags)
        return {"task_id": task.id, "description": task.description}

    @tool(WRITE)
    async def claim_backlog(task_id: TaskId, agent: AgentRef) -> JSON:
        """Assign one backlog task to an agent (the agent is resolved before the backlog is touched)."""
        async with gate.enter("tool:claim_backlog", Scope.TOWN_WRITE):
            claim = await services.backlog.claim(task_id, agent)
        return {"task_id": claim.task_id, "agent_id": claim.agent.id, "agent_name": claim.agent.name}

    @tool(WRITE)
    async def send_message(to: AgentRef, message: Text,
                           kind: MessageKindName = "task",
                           sender: Annotated[str | None, Field(description="Who it is from (default: the "
                                                                           "supervisor)")] = None,
                           urgent: bool = False) -> JSON:
        """Send a message to an agent's inbox (urgent: to its urgent inbox, read first)."""
        async with gate.enter("tool:send_message", Scope.TOWN_WRITE):
            sent = await services.messages.send(to, message, kind=kind, sender=sender, urgent=urgent)
        return plain(sent)

    @tool(READ)
    async def read_inbox(agent: AgentRef) -> JSON:
        """Peek an agent's inbox without taking anything: totals and the first 100 messages."""
        async with gate.enter("tool:read_inbox", Scope.TOWN_READ):
            view = await services.messages.inbox(agent)
        messages = [{"id": m.id, "from": m.from_, "type": m.type, "summary": m.summary} for m in view.messages]
        return {"agent": agent, "agent_id": view.agent_id, "total": view.total, "urgent": view.urgent,
                "messages": messages}

    @tool(MANAGE)
    async def recover() -> JSON:
        """Mark stale agents (no heartbeat or log write for stale_after_secs) Stopped."""
        async with gate.enter("tool:recover", Scope.AGENT_MANAGE):
            report = await services.recovery.recover()
        return {"checked": report.checked, "recovered": len(report.recovered),
                "agents": [a.name for a in report.recovered]}

    @tool(MANAGE)
    async def reclaim(to_backlog: bool = False, to: AgentRef | None = None,
                      from_agent: Annotated[str | None, Field(description="Only the dead agent with exactly "
                                                                          "this name")] = None) -> JSON:
        """Work left in Stopped/Error agents' mailboxes: to the backlog (to_backlog), to an agent (to), or
        only listed (neither)."""
        async with gate.enter("tool:reclaim", Scope.AGENT_MANAGE):
            return plain(await services.recovery.reclaim(to_backlog=to_backlog, to=to, from_name=from_agent))

    @tool(READ, name="scaling_signal")
    async def scaling() -> JSON:
        """The autoscaler signal: queued and in-flight work, workers, and a scaling recommendation."""
        async with gate.enter("tool:scaling_signal", None):
            config = runtime.town.config
            return plain(await scaling_signal(services.store, services.queue, town=runtime.town.name,
                                              max_agents=config.max_agents,
                                              idle_timeout_secs=config.agent.idle_timeout_secs))
