"""Mission lifecycle actions townhall offers (reference §3.5, §5.5); the dispatcher does the rest.

Fixes over upstream: stopping a finished mission is refused (GAP 31), resuming one is a 409 (as the
OpenAPI said), and delete also drops the dispatch lock and the mission's event stream.
"""

from __future__ import annotations

import msgspec

from townhall.domain import SUPERVISOR_ID, Mission, MissionState, QueryBody
from townhall.domain_errors import Conflict, MissionNotFound
from townhall.services.inputs import check_text, resolve_id
from townhall.store import TownStore
from townhall.store.messages import PEEK_LIMIT

HELP_REQUEST_PREFIX = "[Mission Help Needed] Mission "
DEFAULT_FAIL_REASON = "Marked failed via API"


class MissionView(msgspec.Struct, frozen=True):
    mission: Mission
    active: bool


class MissionAction(msgspec.Struct, frozen=True):
    id: str
    state: MissionState
    note: str | None = None
    reason: str | None = None
    retired_help_requests: int = 0


class MissionService:
    def __init__(self, store: TownStore) -> None:
        self.store = store

    async def list(self, *, active_only: bool = False) -> list[MissionView]:
        missions = await self.store.missions.list()
        active = set(await self.store.missions.active_ids())
        views = [MissionView(mission=m, active=m.id in active) for m in missions]
        return [v for v in views if v.active] if active_only else views

    async def get(self, mission_id: str) -> MissionView:
        mission = await self._load(mission_id)
        return MissionView(mission=mission, active=mission.id in set(await self.store.missions.active_ids()))

    async def events(self, mission_id: str, limit: int = 20) -> list[str]:
        mission = await self._load(mission_id)
        return await self.store.missions.events(mission.id, limit)

    async def stop(self, mission_id: str, *, force: bool = False) -> MissionAction:
        mission = await self._load(mission_id)
        if mission.state.is_terminal:
            raise Conflict(f"mission is {mission.state.value} and cannot be stopped")
        if force:
            mission.state, mission.blocked_reason = MissionState.FAILED, "Stopped by user (forced)"
        else:
            mission.state, mission.blocked_reason = MissionState.BLOCKED, "Stopped by user"
        mission.clear_help_requests()
        await self.store.missions.save(mission)
        await self.store.missions.remove_active(mission.id)
        retired = await self._retire_help_requests(mission.id)
        await self.store.missions.log_event(
            mission.id,
            f"Mission stopped via API (force={str(force).lower()}) and retired {retired} stale help request(s)",
        )
        return MissionAction(id=mission.id, state=mission.state, retired_help_requests=retired)

    async def resume(self, mission_id: str) -> MissionAction:
        mission = await self._load(mission_id)
        if mission.state is MissionState.RUNNING:
            return MissionAction(id=mission.id, state=mission.state, note="already running")
        if mission.state.is_terminal:
            raise Conflict(f"mission is {mission.state.value} and cannot be resumed")
        mission.state = MissionState.RUNNING
        mission.next_wake_at = None
        mission.blocked_reason = None
        mission.clear_help_requests()
        await self.store.missions.save(mission)
        await self.store.missions.add_active(mission.id)
        retired = await self._retire_help_requests(mission.id)
        await self.store.missions.log_event(
            mission.id, f"Mission resumed via API (retired {retired} stale help request(s))"
        )
        return MissionAction(id=mission.id, state=mission.state, retired_help_requests=retired)

    async def complete(self, mission_id: str) -> MissionAction:
        mission = await self._load(mission_id)
        if mission.state is MissionState.COMPLETED:
            return MissionAction(id=mission.id, state=mission.state, note="already completed")
        mission.state = MissionState.COMPLETED
        await self.store.missions.save(mission)
        await self.store.missions.remove_active(mission.id)
        await self.store.missions.log_event(mission.id, "Mission completed via API")
        return MissionAction(id=mission.id, state=mission.state)

    async def fail(self, mission_id: str, reason: str | None = None) -> MissionAction:
        mission = await self._load(mission_id)
        text = (reason or "").strip() or DEFAULT_FAIL_REASON
        check_text("reason", text)
        mission.state, mission.blocked_reason = MissionState.FAILED, text
        await self.store.missions.save(mission)
        await self.store.missions.remove_active(mission.id)
        await self.store.missions.log_event(mission.id, f"Mission failed via API: {text}")
        return MissionAction(id=mission.id, state=mission.state, reason=text)

    async def delete(self, mission_id: str) -> str:
        mission_id = await self._resolve_id(mission_id)
        if not await self.store.missions.delete(mission_id):
            raise MissionNotFound(mission_id)
        return mission_id

    async def _resolve_id(self, mission_id: str) -> str:
        return await resolve_id("mission_id", mission_id, self.store.missions.ids_with_prefix, MissionNotFound,
                                "mission")

    async def _load(self, mission_id: str) -> Mission:
        resolved = await self._resolve_id(mission_id)
        mission = await self.store.missions.get(resolved)
        if mission is None:
            raise MissionNotFound(resolved)
        return mission

    async def _retire_help_requests(self, mission_id: str) -> int:
        """Remove the dispatcher's help requests for this mission from the supervisor inbox."""
        marker = f"{HELP_REQUEST_PREFIX}{mission_id}"
        stale = []
        for entry in await self.store.messages.peek(SUPERVISOR_ID, max(PEEK_LIMIT, await self.store.messages.inbox_len(SUPERVISOR_ID))):
            m = entry.message
            if (m is not None and isinstance(m.body, QueryBody) and m.from_ == SUPERVISOR_ID
                    and m.to == SUPERVISOR_ID and m.body.question.startswith(marker)):
                stale.append(entry.raw)
        return await self.store.messages.remove(SUPERVISOR_ID, stale)
