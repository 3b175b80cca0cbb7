"""The only code that knows Redis key names and encodings. Services use :class:`TownStore`."""

from __future__ import annotations

import redis.asyncio as aioredis

from townhall.keys import TownKeys
from townhall.store.actions import ActionResult, TaskActionStore
from townhall.store.agents import AgentPatch, AgentStore
from townhall.store.attempts import AttemptOutcome, AttemptStore, RunLimits
from townhall.store.backlog import BacklogStore
from townhall.store.context import DEFAULT_EVENT_RETENTION, Durability, StoreContext
from townhall.store.docket import DocketEntry, DocketStore
from townhall.store.events import EventStore
from townhall.store.handover import HandoverStore, LeftWith
from townhall.store.history import HistoryStore, Position
from townhall.store.messages import InboxEntry, InboxLengths, MessageStore, Placement, placement_for
from townhall.store.limits import Bucket, BucketAnswer, RateLimitStore
from townhall.store.liveness import LivenessStore
from townhall.store.missions import MissionStore
from townhall.store.overview import AgentLine, ListedAgent, OverviewStore
from townhall.store.processing import ProcessingStore
from townhall.store.reconcile import ReconcileReport, discover, escape_glob, reconcile
from townhall.store.tasks import TaskPatch, TaskStore

__all__ = [
    "ActionResult",
    "AgentPatch",
    "AgentStore",
    "AgentLine",
    "ListedAgent",
    "AttemptOutcome",
    "AttemptStore",
    "Bucket",
    "BucketAnswer",
    "BacklogStore",
    "DocketEntry",
    "Durability",
    "DocketStore",
    "EventStore",
    "HandoverStore",
    "HistoryStore",
    "InboxEntry",
    "InboxLengths",
    "LeftWith",
    "LivenessStore",
    "MessageStore",
    "MissionStore",
    "OverviewStore",
    "Placement",
    "Position",
    "ProcessingStore",
    "RateLimitStore",
    "ReconcileReport",
    "RunLimits",
    "TaskActionStore",
    "TaskPatch",
    "TaskStore",
    "TownStore",
    "escape_glob",
    "placement_for",
]


class TownStore:
    """One town's records in Redis (a ``decode_responses=True`` asyncio client)."""

    def __init__(self, redis: aioredis.Redis, town_name: str, durability: Durability | None = None, *,
                 event_retention: int = DEFAULT_EVENT_RETENTION) -> None:
        """``event_retention``: entries the town event stream keeps (``[townhall.events] retention``)."""
        self.redis = redis
        self.keys = TownKeys(town_name)
        ctx = StoreContext(redis, self.keys, durability, event_retention)
        self._ctx = ctx
        self.agents = AgentStore(ctx)
        self.tasks = TaskStore(ctx)
        self.history = HistoryStore(ctx, self.tasks)
        self.actions = TaskActionStore(ctx)
        self.attempts = AttemptStore(ctx)
        self.backlog = BacklogStore(ctx)
        self.handover = HandoverStore(ctx)
        self.docket = DocketStore(ctx)
        self.processing = ProcessingStore(ctx, self.backlog)
        self.liveness = LivenessStore(ctx)
        self.messages = MessageStore(ctx)
        self.events = EventStore(ctx)
        self.missions = MissionStore(ctx, self.events)
        self.limits = RateLimitStore(ctx)
        self.overview = OverviewStore(ctx)

    async def discover(self) -> tuple[int, int]:
        """Add agents and missions written by other tools since startup to the listing indexes."""
        return await discover(self._ctx)

    async def reconcile(self) -> ReconcileReport:
        """Rebuild indexes and counters from the records (startup only; the one SCAN we do)."""
        return await reconcile(self._ctx)
