"""Task commands: ``tt assign``, ``tt task …`` and the shared backlog, ``tt backlog …``.

With ``--json`` each prints the body of its REST route (``townhall.views``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable, Callable

import click
import msgspec

from townhall.cli.common import services_command
from townhall.cli.options import TownGroup, start_option
from townhall.cli.output import Answer, table
from townhall.domain import Task
from townhall.services.history import DEFAULT_PAGE, MAX_PAGE, STATE_NAMES
from townhall.services.town import TownServices
from townhall.views.records import TaskView
from townhall.views.tasks import (
    AddResponse,
    AssignAllResponse,
    AssignResponse,
    BacklogResponse,
    ClaimResponse,
    RemovedResponse,
    TaskPage,
)


@click.command()
@click.argument("agent")
@click.argument("description")
@start_option
@services_command
async def assign(services: TownServices, agent: str, description: str, start: bool) -> Answer:
    """Create a task and put it in AGENT's inbox."""
    result = await services.tasks.assign(agent, description, start=start)
    return Answer(AssignResponse(task_id=result.task.id, agent_id=result.agent.id, agent_name=agent),
                  f"Assigned {result.task.id} to {result.agent.name}")


@click.command("tasks")
@click.option("--state", help=f"Comma-separated states ({STATE_NAMES}).")
@click.option("--agent", help="Tasks assigned to this agent (name or id).")
@click.option("--tag", help="Tasks carrying this tag.")
@click.option("--mission", help="Tasks of this mission (its id).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="Tasks created at or after this time (UTC unless an offset is given).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=DEFAULT_PAGE, show_default=True)
@click.option("--cursor", help="Go on from a previous page's next_cursor.")
@services_command
async def tasks(services: TownServices, state: str | None, agent: str | None, tag: str | None,
                mission: str | None, since: datetime | None, limit: int, cursor: str | None) -> Answer:
    """The task history, newest first (--json: the body of GET /v1/tasks)."""
    if state is not None:  # what a person types ("Failed, cancelled") in the API's spelling
        state = ",".join(part.strip().lower() for part in state.split(",") if part.strip())
    page = await services.history.page(state=state, agent=agent, tag=tag, mission=mission, since=since,
                                        limit=limit, cursor=cursor)

    def human() -> None:
        table(None, ["task", "state", "assigned to", "created", "description"],
              [[t.id, t.state.value, t.assigned_to, f"{t.created_at:%Y-%m-%d %H:%M:%S}",
                t.description.splitlines()[0][:60] if t.description else ""] for t in page.tasks])
        if page.next_cursor:
            click.echo(f"more: --cursor {page.next_cursor}")

    return Answer(TaskPage.of(page), human)


@click.group(cls=TownGroup)
def task() -> None:
    """Look at and finish tasks."""


def _show_task(view: TaskView) -> None:
    table(None, ["field", "value"], [[k, v] for k, v in msgspec.to_builtins(view).items()])


@task.command("show")
@click.argument("task_id")
@services_command
async def task_show(services: TownServices, task_id: str) -> Answer:
    """One task's record (TASK: its id or a unique prefix of at least 4 characters)."""
    view = TaskView.of(await services.tasks.get(task_id))
    return Answer(view, lambda: _show_task(view))


def _task_action(name: str, help: str, said: str, change: Callable[..., Awaitable[Task]],
                 *options: Callable[[Callable[..., None]], Callable[..., None]]) -> click.Command:
    """``tt task <name> TASK [options]``: ``change(services, task_id, **options)``, answered with the
    task's record and ``Task <id> <said>``."""

    async def run(services: TownServices, task_id: str, **values: Any) -> Answer:
        record = await change(services, task_id, **values)
        return Answer(TaskView.of(record), f"Task {record.id} {said}")

    callback = services_command(run)
    for option in reversed(options):
        callback = option(callback)
    return task.command(name, help=help)(click.argument("task_id")(callback))


task_complete = _task_action(
    "complete", "Mark a task completed with a result (it counts for its agent).", "completed",
    lambda services, task_id, result: services.tasks.complete(task_id, result),
    click.option("--result", default="Completed via tt task complete", show_default=True))
task_cancel = _task_action(
    "cancel", "Cancel a pending, assigned or running task (a running one's CLI is stopped by its worker).",
    "cancelled", lambda services, task_id: services.actions.cancel(task_id))
task_retry = _task_action(
    "retry", "Put a failed or cancelled task back on the shared queue (attempts reset).",
    "is pending on the shared queue again", lambda services, task_id: services.actions.retry(task_id))


@click.group(cls=TownGroup)
def backlog() -> None:
    """The shared backlog of unassigned tasks."""


@backlog.command("add")
@click.argument("description")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@services_command
async def backlog_add(services: TownServices, description: str, tags: tuple[str, ...]) -> Answer:
    """Add a pending task to the shared backlog."""
    record = await services.backlog.add(description, list(tags))
    return Answer(AddResponse(task_id=record.id, description=record.description), f"Added {record.id} to the backlog")


@backlog.command("list")
@services_command
async def backlog_list(services: TownServices) -> Answer:
    """The backlog, oldest first."""
    items = await services.backlog.list()
    return Answer(BacklogResponse.of(items),
                  lambda: table(f"Backlog ({len(items)})", ["task", "description", "tags"],
                                [[i.task_id, i.description[:60], i.tags] for i in items]))


@backlog.command("claim")
@click.argument("task_id")
@click.argument("agent")
@start_option
@services_command
async def backlog_claim(services: TownServices, task_id: str, agent: str, start: bool) -> Answer:
    """Assign one backlog task to AGENT."""
    claim = await services.backlog.claim(task_id, agent, start=start)
    return Answer(ClaimResponse(task_id=claim.task_id, agent_id=claim.agent.id, agent_name=agent),
                  f"{claim.agent.name} claimed {claim.task_id}")


@backlog.command("assign-all")
@click.argument("agent")
@start_option
@services_command
async def backlog_assign_all(services: TownServices, agent: str, start: bool) -> Answer:
    """Assign every backlog task to AGENT."""
    bulk = await services.backlog.assign_all(agent, start=start)
    return Answer(AssignAllResponse(assigned=len(bulk.task_ids), tasks=bulk.task_ids),
                  f"Assigned {len(bulk.task_ids)} task(s) to {bulk.agent.name}")


@backlog.command("remove")
@click.argument("task_id")
@services_command
async def backlog_remove(services: TownServices, task_id: str) -> Answer:
    """Remove a task from the backlog and delete its record."""
    removed = await services.backlog.delete(task_id)
    return Answer(RemovedResponse(removed=True, task_id=removed), f"Removed {removed}")


COMMANDS = (assign, tasks, task, backlog)
