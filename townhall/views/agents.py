"""Agent bodies: the listing, an inbox, spawn, kill/restart and prune."""

from __future__ import annotations

from typing import Sequence

import msgspec

from townhall.domain import Agent
from townhall.services.messages import InboxView
from townhall.store.overview import AgentLine
from townhall.views.records import AgentItem


class AgentListResponse(msgspec.Struct):
    agents: list[AgentItem]
    count: int

    @classmethod
    def of(cls, lines: Sequence[AgentLine]) -> AgentListResponse:
        items = [AgentItem.of(line.agent, line.current_scope) for line in lines]
        return cls(agents=items, count=len(items))


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

    @classmethod
    def of(cls, agent: str, view: InboxView) -> InboxResponse:
        """``agent`` is the reference as the caller gave it."""
        return cls(agent=agent, total=view.total, urgent=view.urgent, agent_id=view.agent_id,
                   messages=[InboxMessageItem(id=m.id, from_=m.from_, type=m.type, summary=m.summary)
                             for m in view.messages])


class SpawnResponse(msgspec.Struct):
    agent_id: str
    name: str
    cli: str
    role_id: str | None
    nickname: str | None
    parent_agent_id: str | None
    state: str

    @classmethod
    def of(cls, agent: Agent) -> SpawnResponse:
        return cls(agent_id=agent.id, name=agent.name, cli=agent.cli, role_id=agent.role_id,
                   nickname=agent.nickname, parent_agent_id=agent.parent_agent_id, state=agent.state.rest_name)


class AgentActionResponse(msgspec.Struct):
    status: str
    agent: str
    agent_id: str


class PruneResponse(msgspec.Struct):
    removed: int
    agents: list[str]

    @classmethod
    def of(cls, removed: Sequence[Agent]) -> PruneResponse:
        return cls(removed=len(removed), agents=[a.name for a in removed])
