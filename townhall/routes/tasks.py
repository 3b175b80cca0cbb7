"""Task routes: pending work and one task (``town.read``); assign and complete (``town.write``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import Resource, problems
from townhall.routes.fields import Start, Text, TimeoutSecs, uuid_path
from townhall.routes.views import TaskView

TaskId = Annotated[str, uuid_path("task")]


class AssignRequest(msgspec.Struct):
    agent: str
    task: Text
    timeout_secs: TimeoutSecs | None = None


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


class TaskController(Resource, path="/tasks", tag="tasks", scope=Scope.TOWN_WRITE):
    @post("/assign", status_code=201, responses=problems(404, 409, body=True),
          summary="Create a task assigned to an agent and put it in the agent's inbox")
    async def assign(self, services: Services, data: JSONBody[AssignRequest],
                     request: Request[Principal, Any, Any], start: Start = False) -> AssignResponse:
        result = await services.tasks.assign(data.agent, data.task, start=start, timeout_secs=data.timeout_secs,
                                             caller=request.user)
        return AssignResponse(task_id=result.task.id, agent_id=result.agent.id, agent_name=data.agent)

    @get("/pending", opt={"scope": Scope.TOWN_READ}, responses=problems(),
         summary="Assigned work waiting in agents' inboxes (first 100 messages of each)")
    async def pending(self, services: Services) -> PendingResponse:
        items = [
            PendingItem(task_id=p.task_id, description=p.description, agent_id=p.agent_id, agent_name=p.agent_name,
                        source=p.source.value)
            for p in await services.tasks.pending()
        ]
        return PendingResponse(tasks=items, count=len(items))

    @get("/{task_id:str}", opt={"scope": Scope.TOWN_READ}, responses=problems(404, 422), summary="One task")
    async def get_task(self, services: Services, task_id: TaskId) -> TaskView:
        return TaskView.of(await services.tasks.get(task_id))

    @post("/{task_id:str}/complete", status_code=200, responses=problems(404, body=True),
          summary="Mark a task completed with a result (counts for its agent, clears its current task)")
    async def complete(self, services: Services, task_id: TaskId,
                       data: JSONBody[CompleteRequest]) -> TaskView:
        return TaskView.of(await services.tasks.complete(task_id, data.result))
