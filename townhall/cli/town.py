"""``tt init`` and ``tt status``: set a town up, and look at it."""

from __future__ import annotations

from pathlib import Path

import click

from townhall.cli.common import runtime_command, town_dir
from townhall.cli.output import Answer, table
from townhall.config import CONFIG_FILE
from townhall.starter_config import starter_config
from townhall.runtime import Runtime
from townhall.services.status import TownStatus
from townhall.views.town import StatusResponse


@click.command()
@click.option("--name", default=None, help="Town name (default: the directory name).")
@click.option("--force", is_flag=True, help="Overwrite an existing tinytown.toml.")
@click.pass_context
def init(ctx: click.Context, name: str | None, force: bool) -> None:
    """Create tinytown.toml and .tt/ in the town directory."""
    root = Path(town_dir(ctx)).absolute()
    config = root / CONFIG_FILE
    if config.exists() and not force:
        raise click.ClickException(f"{config} already exists (use --force to overwrite)")
    town_name = name or root.name or "town"
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("agents", "logs", "tasks"):
        (root / ".tt" / sub).mkdir(parents=True, exist_ok=True)
    config.write_text(starter_config(town_name), encoding="utf-8")
    click.echo(f"Initialized town '{town_name}' in {root}")


@click.command()
@click.option("--deep", is_flag=True, help="Also show each agent's recent activity.")
@runtime_command
async def status(runtime: Runtime, deep: bool) -> Answer:
    """Town, agents, their mailboxes and current tasks."""
    result = await runtime.services.status.status(runtime.endpoint.redacted, deep=deep)
    return Answer(StatusResponse.of(result, deep=deep), lambda: _print_status(result, deep))


def _print_status(result: TownStatus, deep: bool) -> None:
    click.echo(f"Town {result.town.name} at {result.town.root}")
    rows = []
    for item in result.agents:
        a = item.agent
        rows.append([a.name, a.nickname, a.id[:8], a.state.rest_name, a.cli, item.lengths.inbox, item.lengths.urgent,
                     a.tasks_completed, a.rounds_completed,
                     (item.current_scope or "")[:40]])
    table("Agents", ["name", "nickname", "id", "state", "cli", "inbox", "urgent", "done", "rounds", "current task"],
          rows)
    if deep:
        for item in result.agents:
            for line in item.activity or []:
                click.echo(f"  {item.agent.name}: {line}")


COMMANDS = (init, status)
