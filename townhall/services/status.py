"""Town and status views (reference §5.2): one round trip whatever the number of agents, and nothing
that reads finished tasks."""

from __future__ import annotations

import msgspec

from townhall.config import Town
from townhall.store import TownStore
from townhall.store.overview import AgentLine


class TownInfo(msgspec.Struct, frozen=True):
    """The town's name, folder and (redacted) Redis URL."""

    name: str
    root: str
    redis_url: str


class TownStatus(msgspec.Struct, frozen=True):
    town: TownInfo
    #: One per agent: what listings show of it, its mailbox lengths and current task's description;
    #: with ``deep`` also that task's record and its newest activity.
    agents: list[AgentLine]


class StatusService:
    def __init__(self, town: Town, store: TownStore) -> None:
        self.town = town
        self.store = store

    def info(self, redis_url: str) -> TownInfo:
        """``redis_url`` is the redacted endpoint the caller connected to."""
        return TownInfo(name=self.town.name, root=self.town.root_as_given, redis_url=redis_url)

    async def agents(self) -> list[AgentLine]:
        """Every agent with its current task's description (mailbox lengths left at zero)."""
        return await self.store.overview.lines()

    async def status(self, redis_url: str, *, deep: bool = False) -> TownStatus:
        """One round trip: the agents, their mailbox lengths and current tasks (and with ``deep`` their
        newest activity) are read by one script (``store/overview.py``)."""
        return TownStatus(town=self.info(redis_url), agents=await self.store.overview.lines(lengths=True, deep=deep))
