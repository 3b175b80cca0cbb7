"""``GET /v1/town`` and ``GET /v1/status`` (``tt status``)."""

from __future__ import annotations

import msgspec

from townhall.services.status import TownStatus
from townhall.views.copied import Copied
from townhall.views.records import AgentFields, TaskView


# What :class:`townhall.services.status.TownInfo` holds.
class TownResponse(Copied):
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

    @classmethod
    def of(cls, result: TownStatus, *, deep: bool) -> StatusResponse:
        items = []
        for s in result.agents:
            a = s.agent
            # Keywords spelled out (no ``**fields`` dict): one of these per agent.
            item = AgentStatusItem(
                id=a.id, name=a.name, nickname=a.nickname, role_id=a.role_id, parent_agent_id=a.parent_agent_id,
                spawn_mode=a.spawn_mode, cli=a.cli, state=a.state.rest_name,  # the member: a str
                rounds_completed=a.rounds_completed, tasks_completed=a.tasks_completed,
                inbox_len=s.lengths.inbox, urgent_len=s.lengths.urgent,
                current_scope=s.current_scope,
            )
            if deep:
                item.recent_activity = s.activity or []
                item.current_task = TaskView.of(s.current_task) if s.current_task else None
            items.append(item)
        info = result.town
        return cls(name=info.name, root=info.root, redis_url=info.redis_url, agent_count=len(items), agents=items)
