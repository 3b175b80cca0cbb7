"""Task commands: ``tt assign``, ``tt task …`` and the shared backlog, ``tt backlog …``."""

from __future__ import annotations

import click
import msgspec

from townhall.cli.common import services_command
from townhall.cli.options import TownGroup, start_option
from townhall.cli.output import Answer, table
from townhall.services.agents import AgentRef
from townhall.services.town import TownServices


def _task_given(task_id: str, agent: AgentRef, text: str) -> Answer:
    """What ``tt assign`` and ``tt backlog claim`` answer: the task now belongs to ``agent``."""
    return Answer({"task_id": task_id, "agent": agent.name, "agent_id": agent.id}, text)


@click.command()
@click.argument("agent")
@click.argument("description")
@start_option
@services_command
async def assign(services: TownServices, agent: str, description: str, start: bool) -> Answer:
    """Create a task and put it in AGENT's inbox."""
    result = await services.tasks.assign(agent, description, start=start)
    return _task_given(result.task.id, result.agent, f"Assigned {result.task.id} to {result.agent.name}")


@click.group(cls=TownGroup)
def task() -> None:
    """Look at and finish tasks."""


@task.command("show")
@click.argument("task_id")
@services_command
async def task_show(services: TownServices, task_id: str) -> Answer:
    record = await services.tasks.get(task_id)
    return Answer(record,
                  lambda: table(None, ["field", "value"], [[k, v] for k, v in msgspec.to_builtins(record).items()]))


@task.command("complete")
@click.argument("task_id")
@click.option("--result", default="Completed via tt task complete", show_default=True)
@services_command
async def task_complete(services: TownServices, task_id: str, result: str) -> Answer:
    record = await services.tasks.complete(task_id, result)
    return Answer(record, f"Task {record.id} completed")


@click.group(cls=TownGroup)
def backlog() -> None:
    """The shared backlog of unassigned tasks."""


@backlog.command("add")
@click.argument("description")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@services_command
async def backlog_add(services: TownServices, description: str, tags: tuple[str, ...]) -> Answer:
    record = await services.backlog.add(description, list(tags))
    return Answer({"task_id": record.id}, f"Added {record.id} to the backlog")


@backlog.command("list")
@services_command
async def backlog_list(services: TownServices) -> Answer:
    items = await services.backlog.list()
    return Answer({"tasks": items, "total": len(items)},
                  lambda: table(f"Backlog ({len(items)})", ["task", "description", "tags"],
                                [[i.task_id, i.description[:60], ",".join(i.tags)] for i in items]))


@backlog.command("claim")
@click.argument("task_id")
@click.argument("agent")
@start_option
@services_command
async def backlog_claim(services: TownServices, task_id: str, agent: str, start: bool) -> Answer:
    claim = await services.backlog.claim(task_id, agent, start=start)
    return _task_given(claim.task_id, claim.agent, f"{claim.agent.name} claimed {claim.task_id}")


@backlog.command("assign-all")
@click.argument("agent")
@start_option
@services_command
async def backlog_assign_all(services: TownServices, agent: str, start: bool) -> Answer:
    bulk = await services.backlog.assign_all(agent, start=start)
    return Answer({"agent": bulk.agent.name, "task_ids": bulk.task_ids},
                  f"Assigned {len(bulk.task_ids)} task(s) to {bulk.agent.name}")


@backlog.command("remove")
@click.argument("task_id")
@services_command
async def backlog_remove(services: TownServices, task_id: str) -> Answer:
    removed = await services.backlog.delete(task_id)
    return Answer({"removed": True, "task_id": removed}, f"Removed {removed}")


COMMANDS = (assign, task, backlog)
