"""``GET /v1/town`` and ``GET /v1/status`` (scope ``town.read``)."""

from __future__ import annotations

from litestar import get
from litestar.params import FromQuery

from townhall.auth import Scope
from townhall.http.dependencies import Context
from townhall.routes.common import Resource, problems
from townhall.views.town import StatusResponse, TownResponse


class TownController(Resource, path="/", tag="town", scope=Scope.TOWN_READ):
    # These take the whole running town (for the redacted Redis URL) rather than the services as well:
    # Litestar resolves two dependencies of one handler in a task group, which doubles this route's cost.
    @get("/town", summary="Town name, root and (redacted) Redis URL", responses=problems())
    async def town(self, context: Context) -> TownResponse:
        """The town's name, root and Redis URL (password redacted)."""
        return TownResponse.of(context.services.status.info(context.runtime.endpoint.redacted))

    @get("/status", responses=problems(422),
         summary="Town status with every agent; deep=true adds recent activity and the current task")
    async def status(self, context: Context, deep: FromQuery[bool] = False) -> StatusResponse:
        """Every agent with its state, mailbox sizes, counters and current task; `deep=true` adds recent
        activity and the current task's record."""
        result = await context.services.status.status(context.runtime.endpoint.redacted, deep=deep)
        return StatusResponse.of(result, deep=deep)
