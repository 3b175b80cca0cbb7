"""What each panel of the dashboard shows, read through the same services the REST routes call.

The views are plain data; the templates render them (Jinja escapes every value, so a task text or an
agent's activity line that holds markup arrives in the browser as text).
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from townhall.auth import Principal, Scope
from townhall.context import AppContext
from townhall.domain import Task, TaskState
from townhall.services.readiness import check_readiness
from townhall.services.scaling import ScalingSignal, scaling_signal

#: Tasks a panel lists at most (the newest first).
TASK_ROWS = 50
CANCELLABLE = frozenset({TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING})
RETRYABLE = frozenset({TaskState.FAILED, TaskState.CANCELLED})


class Panel(str, enum.Enum):
    TOWN = "town"
    AGENTS = "agents"
    TASKS = "tasks"
    BACKLOG = "backlog"


class Viewer(msgspec.Struct, frozen=True):
    """Who looks: the page offers only the actions their scopes allow (the API checks again)."""

    id: str
    scopes: list[str]
    can_write: bool

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(id=principal.id, scopes=sorted(s.value for s in principal.scopes),
                   can_write=principal.has(Scope.TOWN_WRITE))


class TownView(msgspec.Struct, frozen=True):
    name: str
    ready: bool
    redis_latency_ms: float | None
    detail: str | None
    signal: ScalingSignal | None


class AgentRow(msgspec.Struct, frozen=True):
    name: str
    nickname: str | None
    state: str
    current_task_id: str | None
    current_task: str | None
    last_active_at: datetime
    last_activity: str | None


class TaskRow(msgspec.Struct, frozen=True):
    id: str
    description: str
    state: str
    agent: str | None
    updated_at: datetime
    outcome: str | None
    can_cancel: bool
    can_retry: bool


class BacklogRow(msgspec.Struct, frozen=True):
    task_id: str
    description: str
    tags: list[str]


async def town_view(ctx: AppContext) -> TownView:
    readiness = await check_readiness(ctx.services.store)
    signal = None
    if readiness.ok:
        config = ctx.town.config
        signal = await scaling_signal(
            ctx.services.store, ctx.services.queue, town=ctx.town.name, max_agents=config.max_agents,
            idle_timeout_secs=config.agent.idle_timeout_secs, stale_after_secs=config.agent.stale_after_secs,
        )
    return TownView(name=ctx.town.name, ready=readiness.ok, redis_latency_ms=readiness.latency_ms,
                    detail=readiness.detail, signal=signal)


async def agent_rows(ctx: AppContext) -> list[AgentRow]:
    status = await ctx.services.status.status(ctx.runtime.endpoint.redacted, deep=True)
    rows = []
    for s in status.agents:
        agent, task = s.agent, s.current_task
        rows.append(AgentRow(
            name=agent.name, nickname=agent.nickname, state=agent.state.rest_name,
            current_task_id=task.id if task else None, current_task=task.description if task else None,
            last_active_at=agent.last_active_at, last_activity=(s.activity or [None])[0],
        ))
    return rows


async def backlog_rows(ctx: AppContext) -> list[BacklogRow]:
    return [BacklogRow(task_id=i.task_id, description=i.description, tags=i.tags)
            for i in await ctx.services.backlog.list()]


def task_row(task: Task, agent_names: dict[str, str]) -> TaskRow:
    return TaskRow(
        id=task.id, description=task.description, state=task.state.value,
        agent=agent_names.get(task.assigned_to, task.assigned_to) if task.assigned_to else None,
        updated_at=task.updated_at, outcome=task.result,
        can_cancel=task.state in CANCELLABLE, can_retry=task.state in RETRYABLE,
    )


async def task_rows(ctx: AppContext, state: TaskState | None) -> list[TaskRow]:
    """The newest tasks of the history (``GET /v1/tasks``'s first page), optionally of one state."""
    page = await ctx.services.history.page(state=state.value if state else None, limit=TASK_ROWS)
    names = {s.agent.id: s.agent.name for s in await ctx.services.status.agents()}
    return [task_row(t, names) for t in page.tasks]
