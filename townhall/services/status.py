"""Town and status views (reference §5.2): a few pipelined round trips whatever the number of agents,
and nothing that reads finished tasks."""

from __future__ import annotations

import msgspec

from townhall.config import Town
from townhall.domain import Agent, Task
from townhall.store import InboxLengths, TownStore

ACTIVITY_LINES = 5


class TownInfo(msgspec.Struct, frozen=True):
    """The town's name, folder and (redacted) Redis URL."""

    name: str
    root: str
    redis_url: str


class AgentStatus(msgspec.Struct, frozen=True):
    """One agent as ``status`` shows it: its record, mailbox lengths and current task."""

    agent: Agent
    lengths: InboxLengths
    current_task: Task | None
    #: Only with ``deep``: newest activity lines first.
    activity: list[str] | None = None


class TownStatus(msgspec.Struct, frozen=True):
    town: TownInfo
    agents: list[AgentStatus]


class AgentSummary(msgspec.Struct, frozen=True):
    agent: Agent
    current_task: Task | None


class StatusService:
    def __init__(self, town: Town, store: TownStore) -> None:
        self.town = town
        self.store = store

    def info(self, redis_url: str) -> TownInfo:
        """``redis_url`` is the redacted endpoint the caller connected to."""
        return TownInfo(name=self.town.name, root=self.town.root_as_given, redis_url=redis_url)

    async def agents(self) -> list[AgentSummary]:
        agents = await self.store.agents.list_all()
        tasks = await self._current_tasks(agents)
        return [AgentSummary(agent=a, current_task=tasks.get(a.current_task or "")) for a in agents]

    async def status(self, redis_url: str, *, deep: bool = False) -> TownStatus:
        agents = await self.store.agents.list_all()
        ids = [a.id for a in agents]
        lengths = await self.store.messages.lengths(ids)
        tasks = await self._current_tasks(agents)
        activity = await self.store.agents.activity_many(ids, ACTIVITY_LINES) if deep else {}
        return TownStatus(
            town=self.info(redis_url),
            agents=[
                AgentStatus(
                    agent=a,
                    lengths=lengths.get(a.id, InboxLengths(inbox=0, urgent=0)),
                    current_task=tasks.get(a.current_task or ""),
                    activity=activity.get(a.id, []) if deep else None,
                )
                for a in agents
            ],
        )

    async def _current_tasks(self, agents: list[Agent]) -> dict[str, Task]:
        ids = sorted({a.current_task for a in agents if a.current_task})
        return {t.id: t for t in await self.store.tasks.get_many(ids) if t is not None}
