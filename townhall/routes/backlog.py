"""Backlog routes: list (``town.read``); add, claim, assign-all, delete (``town.write``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import JSONBody

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import Resource, problems
from townhall.routes.fields import Start, Tags, Text, TimeoutSecs, uuid_path
from townhall.views.tasks import AddResponse, AssignAllResponse, BacklogResponse, ClaimResponse, RemovedResponse

TaskId = Annotated[str, uuid_path("task")]


class AddRequest(msgspec.Struct):
    description: Text
    tags: Tags | None = None
    timeout_secs: TimeoutSecs | None = None


class AgentRequest(msgspec.Struct):
    agent: str


class BacklogController(Resource, path="/backlog", tag="backlog", scope=Scope.TOWN_WRITE):
    @get("/", opt={"scope": Scope.TOWN_READ}, responses=problems(), summary="Backlog tasks in FIFO order")
    async def list_backlog(self, services: Services) -> BacklogResponse:
        """The shared backlog in FIFO order; an id without a task record is listed as `(task record not found)`."""
        return BacklogResponse.of(await services.backlog.list())

    @post("/", status_code=201, responses=problems(body=True), summary="Add a pending task to the shared backlog")
    async def add(self, services: Services, data: JSONBody[AddRequest]) -> AddResponse:
        """Add a `pending` task to the shared backlog (where any worker may take it)."""
        task = await services.backlog.add(data.description, data.tags, data.timeout_secs)
        return AddResponse(task_id=task.id, description=task.description)

    @post("/{task_id:str}/claim", status_code=200, responses=problems(404, 409, body=True),
          summary="Assign one backlog task to an agent (the agent is resolved before the backlog is touched)")
    async def claim(self, services: Services, task_id: TaskId, data: JSONBody[AgentRequest],
                    request: Request[Principal, Any, Any], start: Start = False) -> ClaimResponse:
        """Assign one backlog task to an agent: the agent is resolved first, then, atomically, the id leaves
        the backlog, the task becomes `assigned` and its `task_assign` message is delivered. Of concurrent claims
        exactly one wins."""
        result = await services.backlog.claim(task_id, data.agent, start=start, caller=request.user)
        return ClaimResponse(task_id=result.task_id, agent_id=result.agent.id, agent_name=data.agent)

    @post("/assign-all", status_code=200, responses=problems(404, 409, body=True),
          summary="Assign every backlog task to one agent")
    async def assign_all(self, services: Services, data: JSONBody[AgentRequest],
                         request: Request[Principal, Any, Any], start: Start = False) -> AssignAllResponse:
        """Assign every backlog task, oldest first, to one agent."""
        result = await services.backlog.assign_all(data.agent, start=start, caller=request.user)
        return AssignAllResponse(assigned=len(result.task_ids), tasks=result.task_ids)

    @delete("/{task_id:str}", status_code=200, responses=problems(404, 409, 422),
            summary="Remove a task from the backlog and delete its record")
    async def remove(self, services: Services, task_id: TaskId) -> RemovedResponse:
        """Remove a task from the backlog and delete its record, in one step."""
        return RemovedResponse(removed=True, task_id=await services.backlog.delete(task_id))
