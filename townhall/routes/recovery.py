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
from townhall.views.recovery import OrphanResponse, ReclaimResponse, RecoverResponse


class ReclaimRequest(msgspec.Struct):
    to_backlog: bool = False
    #: Agent reference to move the work to.
    to: str | None = None
    #: Only the dead agent with exactly this name.
    from_: str | None = msgspec.field(default=None, name="from")


class OrphanRequest(msgspec.Struct):
    #: ``list`` (default; alias ``""``), ``to_backlog`` (alias ``backlog``), ``cancel`` or ``delete``.
    # Not nullable: one enum in the document (a nullable one gave generated clients three enum classes).
    action: OrphanActionName = "list"


class RecoveryController(Resource, path="/", tag="recovery", scope=Scope.AGENT_MANAGE):
    @post("/recover", status_code=200, responses=problems(),
          summary="Mark stale agents (no heartbeat or log write for stale_after_secs) Stopped")
    async def recover(self, services: Services) -> RecoverResponse:
        """Mark agents whose heartbeat and log are older than `stale_after_secs` `Stopped`, and put back the work
        their workers had taken."""
        return RecoverResponse.of(await services.recovery.recover())

    @post("/reclaim", status_code=200, responses=problems(404, 409, body=True), operation_class=OptionalBody,
          summary="Work in Stopped/Error agents' mailboxes: to the backlog, to an agent, or only listed")
    async def reclaim(self, services: Services, request: Request[Principal, Any, Any],
                      data: JSONBody[ReclaimRequest | None] = None, start: Start = False) -> ReclaimResponse:
        """Work in the mailboxes of `Stopped`/`Error` agents: to the backlog (`to_backlog`), to an agent (`to`;
        a Stopped/Error one refuses unless `start=true` restarts it), or (neither, or no body) only listed."""
        data = data or ReclaimRequest()
        return ReclaimResponse.of(
            await services.recovery.reclaim(to_backlog=data.to_backlog, to=data.to, from_name=data.from_,
                                            start=start, caller=request.user))

    @post("/reclaim/orphan-tasks", status_code=200, responses=problems(body=True), operation_class=OptionalBody,
          summary="Open tasks whose assignee is gone or terminal: list, to_backlog, cancel or delete")
    async def orphan_tasks(self, services: Services,
                           data: JSONBody[OrphanRequest | None] = None) -> OrphanResponse:
        """Open tasks whose assignee has no record or is terminal: list them (default), reset and queue them
        (`to_backlog`), cancel or delete them. Listed before the action is applied."""
        return OrphanResponse.of(await services.recovery.orphan_tasks(data.action if data else "list"))
