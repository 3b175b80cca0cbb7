"""Log routes (``town.read``): a task's run log and an agent's worker log as ``text/plain``, the latter
optionally followed (docs/api.md, "Logs")."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from townhall.auth import Scope
from townhall.http.dependencies import Services
from townhall.routes.common import Resource, problems
from townhall.routes.tasks import TaskId
from townhall.services.logs import MAX_TAIL, check_tail

#: Litestar adds ``; charset=utf-8`` to a ``text/*`` media type itself.
TEXT = "text/plain"

# `schema_extra`: Litestar 2 leaves a falsy bound (ge=0) out of the document.
Tail = Annotated[int | None, QueryParameter(
    ge=0, le=MAX_TAIL, schema_extra={"minimum": 0}, description=f"Only the last N lines (0 to {MAX_TAIL}; 0 with `follow`: only new lines)")]
Attempt = Annotated[int | None, QueryParameter(ge=1, description="This attempt's log (default: the latest)")]
Follow = Annotated[bool, QueryParameter(
    description="Keep the response open and send lines as they are written (chunked), until the client "
                "goes away")]


def _text(description: str) -> dict[int, ResponseSpec]:
    return {200: ResponseSpec(data_container=str, media_type=TEXT, generate_examples=False, description=description),
            **problems(404, 409, 422)}


class LogController(Resource, path="/", tag="logs", scope=Scope.TOWN_READ):
    @get("/tasks/{task_id:str}/log", media_type=TEXT, responses=_text("The run log (stdout and stderr of the CLI)"),
         summary="A task's run log: its latest attempt (or `attempt`), as text",
         description="Read from the town's log folder on this townhall's machine (`.tt/logs/<agent>/"
                     "<task_id>.<attempt>.log`); workers on other machines keep theirs (docs/api.md, Logs).")
    async def task_log(self, services: Services, task_id: TaskId, tail: Tail = None,
                       attempt: Attempt = None) -> Stream:
        log_file = await services.logs.task_log(task_id, attempt)
        return Stream(await services.logs.read(log_file, tail=check_tail(tail)), media_type=TEXT)

    @get("/agents/{agent:str}/log", media_type=TEXT, opt={"stream": True},
         responses=_text("The worker log; with `follow=true` a chunked stream that stays open"),
         summary="An agent's worker log, as text; `follow=true` streams new lines",
         description="`.tt/logs/<name>.log`, where the `local` launcher writes a worker's output. With "
                     "`follow=true` the response stays open (exempt from `request_timeout_ms`) until the "
                     "client disconnects or townhall shuts down.")
    async def agent_log(self, services: Services, agent: FromPath[str], tail: Tail = None, follow: Follow = False) -> Stream:
        log_file = await services.logs.agent_log(agent)
        chunks = await services.logs.read(log_file, tail=check_tail(tail), follow=follow)
        return Stream(chunks, media_type=TEXT, headers={"X-Accel-Buffering": "no"} if follow else None)
