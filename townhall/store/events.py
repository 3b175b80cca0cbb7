"""Town event streams (reference §3.6): XADD with fields ``event_type`` and ``data`` (JSON)."""

from __future__ import annotations

import msgspec
from redis.asyncio.client import Pipeline

from townhall.domain.events import TownEvent
from townhall.store.context import SubStore

TOWN_STREAM_MAXLEN = 1000
AGENT_STREAM_MAXLEN = 100
MISSION_STREAM_MAXLEN = 500


class EventStore(SubStore):
    async def emit(self, event: TownEvent) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            self.queue(pipe, event)
            await pipe.execute()

    def queue(self, pipe: Pipeline, event: TownEvent) -> None:
        """Add the XADDs for ``event`` to a pipeline the caller executes (to join a transaction)."""
        fields = {"event_type": event.event_type, "data": msgspec.json.encode(event).decode()}
        pipe.xadd(self._k.events, fields, maxlen=TOWN_STREAM_MAXLEN, approximate=True)
        for agent_id in {event.agent_id, event.parent_agent_id, event.child_agent_id} - {None}:
            pipe.xadd(self._k.agent_events(agent_id), fields, maxlen=AGENT_STREAM_MAXLEN, approximate=True)
        if event.mission_id:
            pipe.xadd(
                self._k.mission_events_stream(event.mission_id),
                fields,
                maxlen=MISSION_STREAM_MAXLEN,
                approximate=True,
            )
