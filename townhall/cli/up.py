"""``tt up``, ``tt down``, ``tt ps``: a whole town on this machine (see :mod:`townhall.town_up`)."""

from __future__ import annotations

import sys

import click

from townhall.cli.common import load_town_or_exit, town_dir
from townhall import town_up


@click.command()
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Pool workers to run (at most the town's max_agents).")
@click.option("--detach", "background", is_flag=True, help="Run in the background (stop it with `tt down`).")
@click.pass_context
def up(ctx: click.Context, workers: int, background: bool) -> None:
    """Start the town: its private Redis (when none is configured), townhall and pool workers."""
    town = load_town_or_exit(town_dir(ctx))
    limit = town.config.max_agents
    if workers > limit:
        raise click.BadParameter(f"{workers} is more than the town's max_agents ({limit})", param_hint="'--workers'")
    running = town_up.supervisor_pid(town)
    if running is not None:
        raise click.ClickException(f"town {town.name} is already up (tt up, pid {running}); `tt down` stops it")
    if background:
        try:
            pid = town_up.detach(town, workers)
        except (RuntimeError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"town {town.name} is up in the background (pid {pid}); log .tt/logs/town.log")
        return
    sys.exit(town_up.Supervisor(town, workers, sys.stdout).run())


@click.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop what `tt up` started: workers (they hand back their tasks), townhall, then the private Redis."""
    town = load_town_or_exit(town_dir(ctx))
    try:
        pid = town_up.down(town)
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"nothing is running in town {town.name}" if pid is None else f"town {town.name} is down")


@click.command()
@click.pass_context
def ps(ctx: click.Context) -> None:
    """The town's processes (from `.tt/run/` and the private Redis's pid file)."""
    town = load_town_or_exit(town_dir(ctx))
    found = [p for p in town_up.town_processes(town) if p.running]
    if not found:
        click.echo(f"nothing is running in town {town.name}")
        return
    for proc in found:
        click.echo(f"{proc.name:<12} {proc.pid}")


COMMANDS = (up, down, ps)
