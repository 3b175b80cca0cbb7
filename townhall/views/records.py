"""Records as REST shows them: a task, and the fields every agent listing shares."""

from __future__ import annotations

from datetime import datetime

import msgspec

from townhall.domain import Agent, Task
from townhall.store.overview import ListedAgent


class TaskView(msgspec.Struct):
    """A task record as stored (state lowercase, times RFC 3339)."""

    id: str
    description: str
    state: str
    assigned_to: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    result: str | None
    parent_id: str | None
    tags: list[str]
    timeout_secs: int | None
    #: Runs of the task begun so far (a run handed back unfinished is not counted); shared work is
    #: retried until ``[agent] max_attempts``.
    attempts: int

    @classmethod
    def of(cls, task: Task) -> TaskView:
        return cls(
            id=task.id, description=task.description, state=task.state.value, assigned_to=task.assigned_to,
            created_at=task.created_at, updated_at=task.updated_at, started_at=task.started_at,
            completed_at=task.completed_at, result=task.result, parent_id=task.parent_id, tags=task.tags,
            timeout_secs=task.timeout_secs, attempts=task.attempts,
        )


class AgentFields(msgspec.Struct):
    # What every agent listing shows. No docstring: a subclass's schema would take it as its description.
    id: str
    name: str
    nickname: str | None
    role_id: str | None
    parent_agent_id: str | None
    spawn_mode: str
    cli: str
    state: str


class AgentItem(AgentFields):
    """An agent in ``GET /v1/agents`` (reference §5.2); ``state`` is PascalCase."""

    current_scope: str | None

    @classmethod
    def of(cls, agent: Agent | ListedAgent, current_scope: str | None) -> AgentItem:
        # Keywords spelled out (no ``**fields`` dict): listings build one of these per agent.
        return cls(id=agent.id, name=agent.name, nickname=agent.nickname, role_id=agent.role_id,
                   # The member itself: a str, encoded as its value (``.value`` is a slow property on every agent).
                   parent_agent_id=agent.parent_agent_id, spawn_mode=agent.spawn_mode, cli=agent.cli,
                   state=agent.state.rest_name, current_scope=current_scope)
