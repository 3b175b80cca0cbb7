"""Backlog routes: list (``town.read``); add, claim, assign-all, delete (``town.write``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import JSONBody

from townhall.auth import Scope
from townhall.routes.common import problems, services, strict_body
from townhall.routes.fields import Tags, Text, uuid_path

READ = {"scope": Scope.TOWN_READ}
WRITE = {"scope": Scope.TOWN_WRITE}


class BacklogEntry(msgspec.Struct):
    task_id: str
    description: str
    tags: list[str]


class BacklogResponse(msgspec.Struct):
    backlog: list[BacklogEntry]
    count: int


class AddRequest(msgspec.Struct):
    description: Text
    tags: Tags | None = None


class AddResponse(msgspec.Struct):
    task_id: str
    description: str


class AgentRequest(msgspec.Struct):
    agent: str


class ClaimResponse(msgspec.Struct):
    task_id: str
    agent_id: str
    agent_name: str


class AssignAllResponse(msgspec.Struct):
    assigned: int
    tasks: list[str]


class RemovedResponse(msgspec.Struct):
    removed: bool
    task_id: str


@get("/backlog", opt=READ, tags=["backlog"], responses=problems(), summary="Backlog tasks in FIFO order")
async def list_backlog(request: Request[Any, Any, Any]) -> BacklogResponse:
    items = [BacklogEntry(task_id=i.task_id, description=i.description, tags=i.tags)
             for i in await services(request).backlog.list()]
    return BacklogResponse(backlog=items, count=len(items))


@post("/backlog", opt=WRITE, tags=["backlog"], status_code=201, responses=problems(body=True),
      before_request=strict_body,
      summary="Add a pending task to the shared backlog")
async def add(request: Request[Any, Any, Any], data: JSONBody[AddRequest]) -> AddResponse:
    task = await services(request).backlog.add(data.description, data.tags)
    return AddResponse(task_id=task.id, description=task.description)


@post("/backlog/{task_id:str}/claim", opt=WRITE, tags=["backlog"], status_code=200,
      responses=problems(404, 409, body=True), before_request=strict_body,
      summary="Assign one backlog task to an agent (the agent is resolved before the backlog is touched)")
async def claim(request: Request[Any, Any, Any], task_id: Annotated[str, uuid_path("task")],
                data: JSONBody[AgentRequest]) -> ClaimResponse:
    result = await services(request).backlog.claim(task_id, data.agent)
    return ClaimResponse(task_id=result.task_id, agent_id=result.agent.id, agent_name=data.agent)


@post("/backlog/assign-all", opt=WRITE, tags=["backlog"], status_code=200,
      responses=problems(404, 409, body=True), before_request=strict_body,
      summary="Assign every backlog task to one agent")
async def assign_all(request: Request[Any, Any, Any], data: JSONBody[AgentRequest]) -> AssignAllResponse:
    result = await services(request).backlog.assign_all(data.agent)
    return AssignAllResponse(assigned=len(result.task_ids), tasks=result.task_ids)


@delete("/backlog/{task_id:str}", opt=WRITE, tags=["backlog"], status_code=200, responses=problems(404, 422),
        summary="Remove a task from the backlog and delete its record")
async def remove(request: Request[Any, Any, Any], task_id: Annotated[str, uuid_path("task")]) -> RemovedResponse:
    removed = await services(request).backlog.delete(task_id)
    return RemovedResponse(removed=True, task_id=removed)


ROUTES = [list_backlog, add, claim, assign_all, remove]
