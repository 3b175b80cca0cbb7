"""Missions: JSON string records written mostly by the dispatcher, the active set, and the event log."""

from __future__ import annotations

import logging

import msgspec

from townhall.domain.events import TownEvent
from townhall.domain.ids import is_uuid
from townhall.domain.missions import Mission
from townhall.domain.timestamps import utc_now
from townhall.store.context import StoreContext, SubStore
from townhall.store.events import EventStore
from townhall.store.json_codec import decode_mission, encode_mission

log = logging.getLogger(__name__)

MISSION_SUBKEYS = ("work", "watch", "events", "control", "dispatch_lock")
EVENT_LOG_KEEP = 100


class MissionStore(SubStore):
    def __init__(self, ctx: StoreContext, events: EventStore) -> None:
        super().__init__(ctx)
        self._events = events

    async def get(self, mission_id: str) -> Mission | None:
        raw = await self._ctx.read_or_none(self._r.get(self._k.mission(mission_id)), f"mission {mission_id}")
        return self._decode(mission_id, raw)

    def _decode(self, mission_id: str, raw: str | None) -> Mission | None:
        if raw is None:
            return None
        try:
            return decode_mission(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("mission %s unparseable, skipped: %s", mission_id, exc)
            return None

    async def save(self, mission: Mission) -> None:
        """Write the record back; fields we did not change keep the dispatcher's exact JSON."""
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k.mission(mission.id), encode_mission(mission))
            pipe.sadd(self._k.mission_index, mission.id)
            await pipe.execute()

    async def ids(self) -> list[str]:
        """Known mission ids: our index plus the active set (the dispatcher only maintains the latter)."""
        members = await self._r.sunion([self._k.mission_index, self._k.missions_active])
        return sorted(m for m in members if is_uuid(m))

    async def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Mission ids starting with ``prefix`` (missions are few: the whole index is read)."""
        return [m for m in await self.ids() if m.startswith(prefix)][:limit]

    async def list(self) -> list[Mission]:
        ids = await self.ids()
        replies = await self._ctx.read_each("get", [self._k.mission(m) for m in ids])
        missions = []
        for mission_id, raw in zip(ids, replies):
            mission = self._decode(mission_id, raw) if isinstance(raw, str) else None
            if mission is not None:
                missions.append(mission)
        return missions

    async def active_ids(self) -> list[str]:
        """Members of the active set that are UUIDs (what ``/metrics`` counts; states not checked)."""
        return sorted(m for m in await self._r.smembers(self._k.missions_active) if is_uuid(m))

    async def add_active(self, mission_id: str) -> None:
        await self._r.sadd(self._k.missions_active, mission_id)

    async def remove_active(self, mission_id: str) -> None:
        await self._r.srem(self._k.missions_active, mission_id)

    async def delete(self, mission_id: str) -> bool:
        """Delete the record and everything keyed by the mission. ``True`` if the record existed."""
        k = self._k
        owned = [*(k.mission_sub(mission_id, part) for part in MISSION_SUBKEYS), k.mission_events_stream(mission_id)]
        return await self._ctx.delete_record(
            k.mission(mission_id), owned, member=mission_id, indexes=[k.missions_active, k.mission_index]
        )

    async def log_event(self, mission_id: str, text: str) -> None:
        """Append to the mission's event list (newest first, 100 kept) and emit a ``mission_event``."""
        now = utc_now()
        key = self._k.mission_sub(mission_id, "events")
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.lpush(key, f"[{now:%Y-%m-%d %H:%M:%S}] {text}")
            pipe.ltrim(key, 0, EVENT_LOG_KEEP - 1)
            self._events.queue(
                pipe, TownEvent(event_type="mission_event", message=text, timestamp=now, mission_id=mission_id)
            )
            await pipe.execute()

    async def events(self, mission_id: str, limit: int = EVENT_LOG_KEEP) -> list[str]:
        return await self._r.lrange(self._k.mission_sub(mission_id, "events"), 0, limit - 1)
