"""Mission routes: list and get (``town.read``); stop, resume, complete, fail, delete (``agent.manage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import delete, get, post
from litestar.params import FromQuery, JSONBody

from townhall.auth import Scope
from townhall.http.dependencies import Services
from townhall.routes.common import OptionalBody, Resource, problems
from townhall.routes.fields import Text, uuid_path
from townhall.services.missions import MissionAction, MissionView

MissionId = Annotated[str, uuid_path("mission")]


class MissionSummary(msgspec.Struct):
    id: str
    state: str
    active: bool
    objective_count: int
    created_at: datetime | None
    updated_at: datetime | None
    blocked_reason: str | None
    dispatcher_last_tick_at: datetime | None

    @classmethod
    def of(cls, view: MissionView) -> MissionSummary:
        m = view.mission
        return cls(id=m.id, state=m.state.value, active=view.active, objective_count=len(m.objective_refs),
                   created_at=m.created_at, updated_at=m.updated_at, blocked_reason=m.blocked_reason,
                   dispatcher_last_tick_at=m.dispatcher_last_tick_at)


class MissionList(msgspec.Struct):
    missions: list[MissionSummary]
    count: int


class MissionDetail(msgspec.Struct):
    id: str
    state: str
    active: bool
    #: The stored MissionRun document as the dispatcher wrote it.
    mission: dict[str, Any]
    #: Newest mission events first (at most 20).
    events: list[str]


class ActionResponse(msgspec.Struct, omit_defaults=True):
    id: str
    state: str
    note: str | None = None
    reason: str | None = None


class StopRequest(msgspec.Struct):
    force: bool = False


class FailRequest(msgspec.Struct):
    reason: Text | None = None


class DeletedResponse(msgspec.Struct):
    id: str
    deleted: bool


def _action(result: MissionAction) -> ActionResponse:
    return ActionResponse(id=result.id, state=result.state.value, note=result.note, reason=result.reason)


class MissionController(Resource, path="/missions", tag="missions", scope=Scope.AGENT_MANAGE):
    @get("/", opt={"scope": Scope.TOWN_READ}, responses=problems(422),
         summary="Missions (active_only=true: the active set)")
    async def list_missions(self, services: Services,
                            active_only: FromQuery[bool] = False) -> MissionList:
        """Missions known to the town (those a dispatcher started), optionally only the active ones."""
        items = [MissionSummary.of(v) for v in await services.missions.list(active_only=active_only)]
        return MissionList(missions=items, count=len(items))

    @get("/{mission_id:str}", opt={"scope": Scope.TOWN_READ}, responses=problems(404, 409, 422),
         summary="One mission: its stored document and recent events")
    async def get_mission(self, services: Services, mission_id: MissionId) -> MissionDetail:
        """One mission: its state, the stored document and its newest 20 event lines."""
        view = await services.missions.get(mission_id)
        return MissionDetail(id=view.mission.id, state=view.mission.state.value, active=view.active,
                             mission=view.mission.raw, events=await services.missions.events(view.mission.id))

    @post("/{mission_id:str}/stop", status_code=200, responses=problems(404, 409, body=True),
          operation_class=OptionalBody, summary="Stop a mission: blocked (force: failed); a finished mission is a 409")
    async def stop(self, services: Services, mission_id: MissionId,
                   data: JSONBody[StopRequest | None] = None) -> ActionResponse:
        """Stop a mission: `blocked` (with `force`: `failed`), out of the active set, its help requests retired."""
        return _action(await services.missions.stop(mission_id, force=bool(data and data.force)))

    @post("/{mission_id:str}/resume", status_code=200, responses=problems(404, 409, 422),
          summary="Resume a mission (running); a finished mission is a 409")
    async def resume(self, services: Services, mission_id: MissionId) -> ActionResponse:
        """Resume a stopped mission: `running` and back in the active set; a finished mission is a 409."""
        return _action(await services.missions.resume(mission_id))

    @post("/{mission_id:str}/complete", status_code=200, responses=problems(404, 409, 422),
          summary="Mark a mission completed")
    async def complete(self, services: Services, mission_id: MissionId) -> ActionResponse:
        """Mark a mission `completed`."""
        return _action(await services.missions.complete(mission_id))

    @post("/{mission_id:str}/fail", status_code=200, responses=problems(404, 409, body=True),
          operation_class=OptionalBody, summary="Mark a mission failed with a reason")
    async def fail(self, services: Services, mission_id: MissionId,
                   data: JSONBody[FailRequest | None] = None) -> ActionResponse:
        """Mark a mission `failed` with a reason (default `Marked failed via API`)."""
        return _action(await services.missions.fail(mission_id, data.reason if data else None))

    @delete("/{mission_id:str}", status_code=200, responses=problems(404, 409, 422),
            summary="Delete a mission and everything keyed by it")
    async def remove(self, services: Services, mission_id: MissionId) -> DeletedResponse:
        """Delete a mission with its work, watch, events and control keys, dispatch lock and event stream."""
        return DeletedResponse(id=await services.missions.delete(mission_id), deleted=True)
