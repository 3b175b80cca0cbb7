"""Town and status views (reference §5.2): one round trip whatever the number of agents, and nothing
that reads finished tasks."""

from __future__ import annotations

import msgspec

from townhall.config import Town
from townhall.store import TownStore
from townhall.store.overview import AgentView

ACTIVITY_LINES = 5


class TownInfo(msgspec.Struct, frozen=True):
    """The town's name, folder and (redacted) Redis URL."""

    name: str
    root: str
    redis_url: str


class TownStatus(msgspec.Struct, frozen=True):
    town: TownInfo
    #: One per agent: its record, mailbox lengths and current task; ``activity`` only with ``deep``.
    agents: list[AgentView]


class StatusService:
    def __init__(self, town: Town, store: TownStore) -> None:
        self.town = town
        self.store = store

    def info(self, redis_url: str) -> TownInfo:
        """``redis_url`` is the redacted endpoint the caller connected to."""
        return TownInfo(name=self.town.name, root=self.town.root_as_given, redis_url=redis_url)

    async def agents(self) -> list[AgentView]:
        """Every agent with its current task (mailbox lengths left at zero)."""
        return await self.store.overview.agents(current_task=True)

    async def status(self, redis_url: str, *, deep: bool = False) -> TownStatus:
        """One round trip: the agents, their mailbox lengths and current tasks (and with ``deep`` their
        newest activity) are read by one script (``store/overview.py``)."""
        views = await self.store.overview.agents(lengths=True, current_task=True,
                                                 activity=ACTIVITY_LINES if deep else 0)
        return TownStatus(town=self.info(redis_url), agents=views)
