"""Recovery routes (``agent.manage``): recover stale agents, reclaim dead agents' work, orphan tasks."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import JSONBody

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import OptionalBody, Resource, problems
from townhall.routes.fields import OrphanActionName, Start


class RecoverResponse(msgspec.Struct):
    checked: int
    recovered: int
    agents: list[str]


class ReclaimRequest(msgspec.Struct):
    to_backlog: bool = False
    #: Agent reference to move the work to.
    to: str | None = None
    #: Only the dead agent with exactly this name.
    from_: str | None = msgspec.field(default=None, name="from")


class ReclaimItem(msgspec.Struct):
    from_agent: str
    message_id: str
    type: str
    task_id: str | None
    description: str


class ReclaimResponse(msgspec.Struct):
    reclaimed: int
    #: ``backlog``, ``listed`` or ``agent:<id>``.
    destination: str
    items: list[ReclaimItem]


class OrphanRequest(msgspec.Struct):
    #: ``list`` (default; alias ``""``), ``to_backlog`` (alias ``backlog``), ``cancel`` or ``delete``.
    action: OrphanActionName | None = None


class OrphanItem(msgspec.Struct):
    task_id: str
    assigned_to: str
    state: str
    reason: str


class OrphanResponse(msgspec.Struct):
    action: str
    count: int
    orphans: list[OrphanItem]


class RecoveryController(Resource, path="/", tag="recovery", scope=Scope.AGENT_MANAGE):
    @post("/recover", status_code=200, responses=problems(),
          summary="Mark stale agents (no heartbeat or log write for stale_after_secs) Stopped")
    async def recover(self, services: Services) -> RecoverResponse:
        report = await services.recovery.recover()
        return RecoverResponse(checked=report.checked, recovered=len(report.recovered),
                               agents=[a.name for a in report.recovered])

    @post("/reclaim", status_code=200, responses=problems(404, 409, body=True), operation_class=OptionalBody,
          summary="Work in Stopped/Error agents' mailboxes: to the backlog, to an agent, or only listed")
    async def reclaim(self, services: Services, request: Request[Principal, Any, Any],
                      data: JSONBody[ReclaimRequest | None] = None, start: Start = False) -> ReclaimResponse:
        data = data or ReclaimRequest()
        report = await services.recovery.reclaim(to_backlog=data.to_backlog, to=data.to, from_name=data.from_,
                                                 start=start, caller=request.user)
        return ReclaimResponse(
            reclaimed=report.reclaimed, destination=report.destination,
            items=[ReclaimItem(from_agent=i.from_agent, message_id=i.message_id, type=i.type, task_id=i.task_id,
                               description=i.description) for i in report.items],
        )

    @post("/reclaim/orphan-tasks", status_code=200, responses=problems(body=True), operation_class=OptionalBody,
          summary="Open tasks whose assignee is gone or terminal: list, to_backlog, cancel or delete")
    async def orphan_tasks(self, services: Services,
                           data: JSONBody[OrphanRequest | None] = None) -> OrphanResponse:
        report = await services.recovery.orphan_tasks(data.action if data else None)
        return OrphanResponse(
            action=report.action.value, count=report.count,
            orphans=[OrphanItem(task_id=o.task_id, assigned_to=o.assigned_to, state=o.state, reason=o.reason)
                     for o in report.orphans],
        )
