"""Task routes: pending work and one task (``town.read``); assign and complete (``town.write``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody, QueryParameter

from townhall.auth import Principal, Scope
from townhall.http.dependencies import Services
from townhall.routes.common import OptionalBody, Resource, problems
from townhall.routes.fields import NO_CONTROL, Start, Text, TimeoutSecs, uuid_path
from townhall.services.history import (
    CURSOR_PATTERN,
    DEFAULT_PAGE,
    MAX_PAGE,
    SCAN_BUDGET,
    STATE_LIST_PATTERN,
    STATE_NAMES,
)
from townhall.services.inputs import MAX_LABEL_CHARS
from townhall.views.records import TaskView
from townhall.views.tasks import AssignResponse, PendingResponse, TaskPage

TaskId = Annotated[str, uuid_path("task")]


class AssignRequest(msgspec.Struct):
    agent: str
    task: Text
    timeout_secs: TimeoutSecs | None = None


class CompleteRequest(msgspec.Struct):
    result: Text = ""


# The patterns are stated in the document only: the service checks them, with errors that name the
# query parameter and say what is accepted.
StateFilter = Annotated[str | None, QueryParameter(
    name="state", schema_extra={"pattern": STATE_LIST_PATTERN},
    description=f"Comma-separated states ({STATE_NAMES}), lowercase, no spaces; anything else is a 422")]
AgentFilter = Annotated[str | None, QueryParameter(
    description="The assignee: an agent name or id (an unknown agent is a 404; the id of a pruned agent "
                "still finds its tasks)")]
TagFilter = Annotated[str | None, QueryParameter(
    schema_extra={"maxLength": MAX_LABEL_CHARS, "pattern": NO_CONTROL}, description="Tasks carrying this tag")]
MissionFilter = Annotated[str | None, QueryParameter(
    format="uuid", description="Tasks of this mission (a UUID): those tagged `mission:<id>`, as the dispatcher tags them")]
# Text, parsed by the service: Litestar would also take a bare number (``since=0.5``) as a datetime.
SinceFilter = Annotated[str | None, QueryParameter(
    format="date-time", description="Tasks created at or after this time (RFC 3339; without an offset: UTC)")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description=f"Page size, 1 to {MAX_PAGE}")]
Cursor = Annotated[str | None, QueryParameter(
    schema_extra={"pattern": CURSOR_PATTERN}, description="The `next_cursor` of the previous page, unchanged (anything else is a 422)")]


class TaskController(Resource, path="/tasks", tag="tasks", scope=Scope.TOWN_WRITE):
    @get("/", opt={"scope": Scope.TOWN_READ}, responses=problems(404, 409, 422),
         summary="The task history: every task, newest first, filtered, a page at a time",
         description="Each item has the shape of `GET /v1/tasks/{task_id}`. A page costs its size plus "
                     f"at most {SCAN_BUDGET} index entries the filters reject, never the length of the "
                     "history.")
    async def list_tasks(self, services: Services, states: StateFilter = None, agent: AgentFilter = None,
                         tag: TagFilter = None, mission: MissionFilter = None, since: SinceFilter = None,
                         limit: Limit = DEFAULT_PAGE, cursor: Cursor = None) -> TaskPage:
        page = await services.history.page(state=states, agent=agent, tag=tag, mission=mission, since=since,
                                            limit=limit, cursor=cursor)
        return TaskPage.of(page)

    @post("/assign", status_code=201, responses=problems(404, 409, body=True),
          summary="Create a task assigned to an agent and put it in the agent's inbox")
    async def assign(self, services: Services, data: JSONBody[AssignRequest],
                     request: Request[Principal, Any, Any], start: Start = False) -> AssignResponse:
        """Create an `assigned` task and append its `task_assign` message to the agent's inbox, in one
        transaction. A `Stopped`/`Error` agent refuses (409) unless `start=true` restarts it first."""
        result = await services.tasks.assign(data.agent, data.task, start=start, timeout_secs=data.timeout_secs,
                                             caller=request.user)
        return AssignResponse(task_id=result.task.id, agent_id=result.agent.id, agent_name=data.agent)

    @get("/pending", opt={"scope": Scope.TOWN_READ}, responses=problems(),
         summary="Assigned work waiting in agents' inboxes (first 100 messages of each)")
    async def pending(self, services: Services) -> PendingResponse:
        """Work waiting in agents' inboxes (the first 100 regular messages of each): assigned tasks not yet
        finished, and plain task messages."""
        return PendingResponse.of(await services.tasks.pending())

    @get("/{task_id:str}", opt={"scope": Scope.TOWN_READ}, responses=problems(404, 409, 422),
         summary="One task")
    async def get_task(self, services: Services, task_id: TaskId) -> TaskView:
        """One task record; `task_id` is its id or a unique prefix of at least 4 hex digits."""
        return TaskView.of(await services.tasks.get(task_id))

    @post("/{task_id:str}/cancel", status_code=200, responses=problems(404, 409, 422),
          summary="Cancel a task: withdrawn from its queue, or its running CLI stopped by the worker",
          description="Pending or assigned: withdrawn from the backlog or its assignee's mailbox and "
                      "`cancelled` at once. Running: `cancelled` at once; its worker stops the CLI's process "
                      "group within about a second. A finished task is a 409.")
    async def cancel(self, services: Services, task_id: TaskId,
                     request: Request[Principal, Any, Any]) -> TaskView:
        return TaskView.of(await services.actions.cancel(task_id, caller=request.user))

    @post("/{task_id:str}/retry", status_code=200, responses=problems(404, 409, 422),
          summary="Retry a failed or cancelled task: pending again on the shared queue, attempts reset",
          description="Any other state is a 409.")
    async def retry(self, services: Services, task_id: TaskId) -> TaskView:
        return TaskView.of(await services.actions.retry(task_id))

    @post("/{task_id:str}/complete", status_code=200, responses=problems(404, 409, body=True),
          operation_class=OptionalBody,
          summary="Mark a task completed with a result (counts for its agent, clears its current task)")
    async def complete(self, services: Services, task_id: TaskId,
                       data: JSONBody[CompleteRequest | None] = None) -> TaskView:
        """Mark a task `completed` with `result`; in the same step its agent's current task is cleared and its
        completions counted. The body is optional."""
        return TaskView.of(await services.tasks.complete(task_id, data.result if data else ""))
