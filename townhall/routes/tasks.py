"""Task routes: pending work and one task (``town.read``); assign and complete (``town.write``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody

from townhall.auth import Scope
from townhall.routes.common import problems, services, strict_body
from townhall.routes.fields import Text, uuid_path
from townhall.routes.views import TaskView

READ = {"scope": Scope.TOWN_READ}
WRITE = {"scope": Scope.TOWN_WRITE}


class AssignRequest(msgspec.Struct):
    agent: str
    task: Text


class AssignResponse(msgspec.Struct):
    task_id: str
    agent_id: str
    agent_name: str


class PendingItem(msgspec.Struct):
    task_id: str
    description: str
    agent_id: str
    agent_name: str
    #: ``task`` (task_id is a task record) or ``message`` (a plain task message: task_id is its id).
    source: str


class PendingResponse(msgspec.Struct):
    tasks: list[PendingItem]
    count: int


class CompleteRequest(msgspec.Struct):
    result: Text = ""


@post("/tasks/assign", opt=WRITE, tags=["tasks"], status_code=201, responses=problems(404, 409, body=True),
      before_request=strict_body,
      summary="Create a task assigned to an agent and put it in the agent's inbox")
async def assign(request: Request[Any, Any, Any], data: JSONBody[AssignRequest]) -> AssignResponse:
    result = await services(request).tasks.assign(data.agent, data.task)
    return AssignResponse(task_id=result.task.id, agent_id=result.agent.id, agent_name=data.agent)


@get("/tasks/pending", opt=READ, tags=["tasks"], responses=problems(),
     summary="Assigned work waiting in agents' inboxes (first 100 messages of each)")
async def pending(request: Request[Any, Any, Any]) -> PendingResponse:
    items = [
        PendingItem(task_id=p.task_id, description=p.description, agent_id=p.agent_id, agent_name=p.agent_name,
                    source=p.source.value)
        for p in await services(request).tasks.pending()
    ]
    return PendingResponse(tasks=items, count=len(items))


@get("/tasks/{task_id:str}", opt=READ, tags=["tasks"], responses=problems(404, 422), summary="One task")
async def get_task(request: Request[Any, Any, Any], task_id: Annotated[str, uuid_path("task")]) -> TaskView:
    return TaskView.of(await services(request).tasks.get(task_id))


@post("/tasks/{task_id:str}/complete", opt=WRITE, tags=["tasks"], status_code=200,
      responses=problems(404, body=True), before_request=strict_body,
      summary="Mark a task completed with a result (counts for its agent, clears its current task)")
async def complete(request: Request[Any, Any, Any], task_id: Annotated[str, uuid_path("task")],
                   data: JSONBody[CompleteRequest]) -> TaskView:
    return TaskView.of(await services(request).tasks.complete(task_id, data.result))


ROUTES = [assign, pending, get_task, complete]
