"""Agents, tasks and the town as MCP results show them: plain JSON values, named as REST names them."""

from __future__ import annotations

from typing import Any

import msgspec

from townhall.domain import Agent, Task
from townhall.services.status import TownStatus
from townhall.store.overview import AgentLine, ListedAgent

JSON = dict[str, Any]


def plain(value: Any) -> Any:
    """A service result (msgspec structs, enums, datetimes) as JSON builtins."""
    return msgspec.to_builtins(value)


def task_view(task: Task) -> JSON:
    return plain(task)


def agent_view(agent: Agent | ListedAgent, current_scope: str | None) -> JSON:
    """An agent as ``GET /v1/agents`` lists it (``state`` PascalCase), with its counters."""
    return {
        "id": agent.id, "name": agent.name, "nickname": agent.nickname, "role_id": agent.role_id,
        "parent_agent_id": agent.parent_agent_id, "spawn_mode": agent.spawn_mode.value, "cli": agent.cli,
        "state": agent.state.rest_name, "current_scope": current_scope,
        "rounds_completed": agent.rounds_completed, "tasks_completed": agent.tasks_completed,
    }


def status_view(status: TownStatus, *, deep: bool) -> JSON:
    """The town as ``GET /v1/status`` shows it; ``deep`` adds activity lines and the current task."""
    agents = [agent_status_view(s, deep=deep) for s in status.agents]
    return {**plain(status.town), "agent_count": len(agents), "agents": agents}


def agent_status_view(status: AgentLine, *, deep: bool) -> JSON:
    item = agent_view(status.agent, status.current_scope)
    item.update(inbox_len=status.lengths.inbox, urgent_len=status.lengths.urgent)
    if deep:
        item["recent_activity"] = status.activity or []
        item["current_task"] = task_view(status.current_task) if status.current_task else None
    return item
