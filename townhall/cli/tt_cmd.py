"""The ``tt`` console script: town setup and operations on the same services as REST.

Every command opens the town's Redis (starting a private, detached server when nothing answers) and
calls the services — never Redis directly. Human output is a ``rich`` table or line; ``--json`` prints
the same data as JSON. Exit codes: 0 ok, 1 a refused operation (not found, conflict, invalid input),
2 configuration error, 3 (``agent-loop``) another live worker already serves the agent.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table

from townhall.cli.common import run_in_town
from townhall.cli.groups import register_plugin_commands, tt
from townhall.config import CONFIG_FILE, starter_config
from townhall.runtime import Role, Runtime
from townhall.worker import run_worker

T = TypeVar("T")

console = Console()


@tt.command()
@click.option("--name", default=None, help="Town name (default: the directory name).")
@click.option("--force", is_flag=True, help="Overwrite an existing tinytown.toml.")
@click.pass_context
def init(ctx: click.Context, name: str | None, force: bool) -> None:
    """Create tinytown.toml and .tt/ in the town directory."""
    root = Path(ctx.obj["town_dir"]).absolute()
    config = root / CONFIG_FILE
    if config.exists() and not force:
        raise click.ClickException(f"{config} already exists (use --force to overwrite)")
    town_name = name or root.name or "town"
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("agents", "logs", "tasks"):
        (root / ".tt" / sub).mkdir(parents=True, exist_ok=True)
    config.write_text(starter_config(town_name), encoding="utf-8")
    click.echo(f"Initialized town '{town_name}' in {root}")


# ---- plumbing ------------------------------------------------------------------------------------
def with_services(ctx: click.Context, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open the town and run ``action(services)``; domain errors exit 1."""

    async def run(runtime: Runtime) -> T:
        ctx.obj["redis_url"] = runtime.endpoint.url
        return await action(runtime.services)

    return run_in_town(ctx.obj["town_dir"], run)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, default=str))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    console.print(t)


def pass_services(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Decorate ``async fn(services, **params)`` as a click callback run against the town."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, **params: Any) -> Any:
        return with_services(ctx, lambda services: fn(services, **params))

    return wrapper


# ---- status and agents ---------------------------------------------------------------------------
@tt.command()
@click.option("--deep", is_flag=True, help="Also show each agent's recent activity.")
@json_option
@click.pass_context
def status(ctx: click.Context, deep: bool, as_json: bool) -> None:
    """Town, agents, their mailboxes and current tasks."""

    async def run(services: Any) -> Any:
        return await services.status.status(ctx.obj["redis_url"], deep=deep)

    result = with_services(ctx, run)
    if as_json:
        emit_json(result)
        return
    click.echo(f"Town {result.town.name} at {result.town.root}")
    rows = []
    for item in result.agents:
        a = item.agent
        rows.append([a.name, a.id[:8], a.state.rest_name, a.cli, item.lengths.inbox, item.lengths.urgent,
                     a.tasks_completed, a.rounds_completed,
                     item.current_task.description[:40] if item.current_task else ""])
    table("Agents", ["name", "id", "state", "cli", "inbox", "urgent", "done", "rounds", "current task"], rows)
    if deep:
        for item in result.agents:
            for line in item.activity or []:
                click.echo(f"  {item.agent.name}: {line}")


@tt.command()
@click.argument("name")
@click.option("--cli", default=None, help="CLI preset (default: the town's default_cli).")
@click.option("--role", default=None)
@click.option("--nickname", default=None)
@click.option("--parent", default=None, help="Parent agent id.")
@click.option("--foreground", is_flag=True, help="Run the worker in this process instead of launching it.")
@json_option
@click.pass_context
def spawn(ctx: click.Context, name: str, cli: str | None, role: str | None, nickname: str | None,
          parent: str | None, foreground: bool, as_json: bool) -> None:
    """Register an agent and start its worker (through the town's launcher)."""

    async def run(services: Any) -> Any:
        return await services.agents.spawn(name, cli=cli, role_id=role, nickname=nickname,
                                           parent_agent_id=parent, launch=not foreground)

    agent = with_services(ctx, run)
    if as_json:
        emit_json(agent)
    else:
        click.echo(f"Spawned {agent.name} ({agent.id}) with cli {agent.cli}")
    if foreground:
        ctx.invoke(agent_loop, name=agent.name, agent_id=agent.id, cli=None)


@tt.command("agent-loop")
@click.argument("name")
@click.option("--id", "agent_id", default=None, help="The agent record to serve (default: the one named NAME).")
@click.option("--cli", default=None, help="CLI preset when a new agent record is registered.")
@click.pass_context
def agent_loop(ctx: click.Context, name: str, agent_id: str | None, cli: str | None) -> None:
    """Run the worker for agent NAME until it stops (idle timeout, kill, prune, SIGTERM)."""
    sys.exit(run_in_town(ctx.obj["town_dir"], lambda runtime: run_worker(runtime, name, agent_id, cli),
                         role=Role.WORKER))


@tt.command()
@click.argument("agent")
@json_option
@pass_services
async def kill(services: Any, agent: str, as_json: bool) -> None:
    """Ask an agent's worker to stop (it hands back unfinished work and exits)."""
    ref = await services.lifecycle.kill(agent)
    _say(as_json, {"agent": ref.name, "agent_id": ref.id, "stop_requested": True}, f"Stop requested for {ref.name}")


@tt.command()
@click.argument("agent")
@json_option
@pass_services
async def restart(services: Any, agent: str, as_json: bool) -> None:
    """Restart a Stopped/Error agent: Idle again and a new worker for the same id."""
    record = await services.lifecycle.restart(agent)
    _say(as_json, record, f"Restarted {record.name} ({record.id})")


@tt.command()
@click.option("--all", "all_agents", is_flag=True, help="Remove every agent, not only stopped ones.")
@json_option
@pass_services
async def prune(services: Any, all_agents: bool, as_json: bool) -> None:
    """Remove Stopped/Error agents with their mailboxes."""
    removed = await services.agents.prune(all_agents=all_agents)
    _say(as_json, {"removed": [{"id": a.id, "name": a.name} for a in removed]},
         f"Removed {len(removed)} agent(s)" + "".join(f"\n  {a.name} ({a.id})" for a in removed))


@tt.command()
@json_option
@pass_services
async def recover(services: Any, as_json: bool) -> None:
    """Mark agents whose worker is gone Stopped and put back the work they had taken."""
    report = await services.recovery.recover()
    _say(as_json, report, f"Checked {report.checked}, recovered {len(report.recovered)}"
         + "".join(f"\n  {a.name} (was {a.state.rest_name})" for a in report.recovered))


@tt.command()
@click.option("--to-backlog", is_flag=True, help="Put dead agents' tasks back in the backlog.")
@click.option("--to", "to_agent", default=None, help="Move dead agents' work to this agent.")
@click.option("--from", "from_name", default=None, help="Only the dead agent with this name.")
@json_option
@pass_services
async def reclaim(services: Any, to_backlog: bool, to_agent: str | None, from_name: str | None,
                  as_json: bool) -> None:
    """Work left in dead (Stopped/Error) agents' mailboxes: list it, or move it."""
    report = await services.recovery.reclaim(to_backlog=to_backlog, to=to_agent, from_name=from_name)
    if as_json:
        emit_json(report)
        return
    table(f"Reclaimed {report.reclaimed} → {report.destination}", ["from", "type", "task", "description"],
          [[i.from_agent, i.type, i.task_id, i.description[:50]] for i in report.items])


# ---- tasks ---------------------------------------------------------------------------------------
@tt.command()
@click.argument("agent")
@click.argument("description")
@json_option
@pass_services
async def assign(services: Any, agent: str, description: str, as_json: bool) -> None:
    """Create a task and put it in AGENT's inbox."""
    result = await services.tasks.assign(agent, description)
    _say(as_json, {"task_id": result.task.id, "agent": result.agent.name, "agent_id": result.agent.id},
         f"Assigned {result.task.id} to {result.agent.name}")


@tt.group()
def task() -> None:
    """Look at and finish tasks."""


@task.command("show")
@click.argument("task_id")
@json_option
@pass_services
async def task_show(services: Any, task_id: str, as_json: bool) -> None:
    record = await services.tasks.get(task_id)
    if as_json:
        emit_json(record)
        return
    table(None, ["field", "value"], [[k, v] for k, v in msgspec.to_builtins(record).items()])


@task.command("complete")
@click.argument("task_id")
@click.option("--result", default="Completed via tt task complete", show_default=True)
@json_option
@pass_services
async def task_complete(services: Any, task_id: str, result: str, as_json: bool) -> None:
    record = await services.tasks.complete(task_id, result)
    _say(as_json, record, f"Task {record.id} completed")


# ---- backlog -------------------------------------------------------------------------------------
@tt.group()
def backlog() -> None:
    """The shared backlog of unassigned tasks."""


@backlog.command("add")
@click.argument("description")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@json_option
@pass_services
async def backlog_add(services: Any, description: str, tags: tuple[str, ...], as_json: bool) -> None:
    record = await services.backlog.add(description, list(tags))
    _say(as_json, {"task_id": record.id}, f"Added {record.id} to the backlog")


@backlog.command("list")
@json_option
@pass_services
async def backlog_list(services: Any, as_json: bool) -> None:
    items = await services.backlog.list()
    if as_json:
        emit_json({"tasks": items, "total": len(items)})
        return
    table(f"Backlog ({len(items)})", ["task", "description", "tags"],
          [[i.task_id, i.description[:60], ",".join(i.tags)] for i in items])


@backlog.command("claim")
@click.argument("task_id")
@click.argument("agent")
@json_option
@pass_services
async def backlog_claim(services: Any, task_id: str, agent: str, as_json: bool) -> None:
    claim = await services.backlog.claim(task_id, agent)
    _say(as_json, {"task_id": claim.task_id, "agent": claim.agent.name, "agent_id": claim.agent.id},
         f"{claim.agent.name} claimed {claim.task_id}")


@backlog.command("assign-all")
@click.argument("agent")
@json_option
@pass_services
async def backlog_assign_all(services: Any, agent: str, as_json: bool) -> None:
    bulk = await services.backlog.assign_all(agent)
    _say(as_json, {"agent": bulk.agent.name, "task_ids": bulk.task_ids},
         f"Assigned {len(bulk.task_ids)} task(s) to {bulk.agent.name}")


@backlog.command("remove")
@click.argument("task_id")
@json_option
@pass_services
async def backlog_remove(services: Any, task_id: str, as_json: bool) -> None:
    removed = await services.backlog.delete(task_id)
    _say(as_json, {"removed": True, "task_id": removed}, f"Removed {removed}")


# ---- messages ------------------------------------------------------------------------------------
@tt.command()
@click.argument("to")
@click.argument("message")
@click.option("--kind", default="task", show_default=True, help="task, query, info or ack.")
@click.option("--from", "sender", default=None, help="Sender (agent reference or UUID; default supervisor).")
@click.option("--urgent", is_flag=True)
@json_option
@pass_services
async def send(services: Any, to: str, message: str, kind: str, sender: str | None, urgent: bool,
               as_json: bool) -> None:
    """Send a message to an agent's inbox."""
    sent = await services.messages.send(to, message, kind=kind, sender=sender, urgent=urgent)
    _say(as_json, sent, f"Sent {sent.message_id} to {sent.to_agent}{' (urgent)' if urgent else ''}")


@tt.command()
@click.argument("agent")
@json_option
@pass_services
async def inbox(services: Any, agent: str, as_json: bool) -> None:
    """An agent's inbox (without taking anything out)."""
    view = await services.messages.inbox(agent)
    if as_json:
        emit_json(view)
        return
    table(f"Inbox: {view.total} message(s), {view.urgent} urgent", ["id", "from", "type", "summary"],
          [[m.id[:8], m.from_[:8], m.type, m.summary[:60]] for m in view.messages])


def _say(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        emit_json(data)
    else:
        click.echo(text)


def main() -> None:
    register_plugin_commands()
    tt()


if __name__ == "__main__":
    main()
