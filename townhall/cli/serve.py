"""The ``townhall`` commands: serve the REST API, run a worker, list plugins, export the OpenAPI document."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from townhall.cli.agents import pool_option, serve_agent
from townhall.cli.common import EXIT_STARTUP, cli_plugins, fail, load_town_or_exit, setup_logging, town_dir
from townhall.cli.output import Answer, json_option
from townhall.plugins import PluginInfo, describe_plugins
from townhall.startup_checks import StartupError


@click.command()
@click.option("-b", "--bind", default=None, help="Bind address (default: [townhall].bind).")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [townhall].rest_port).")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Server processes on the port (default: [townhall].workers, 1).")
@click.pass_context
def rest(ctx: click.Context, bind: str | None, port: int | None, workers: int | None) -> None:
    """Serve the REST API (the default command)."""
    from townhall.server import serve

    town = load_town_or_exit(town_dir(ctx))
    verbose = logging.getLogger("townhall").isEnabledFor(logging.DEBUG)
    try:
        serve(town, cli_plugins(), bind or town.config.townhall.bind,
              town.config.townhall.rest_port if port is None else port, workers,
              setup_logging=functools.partial(setup_logging, verbose))
    except StartupError as exc:
        fail(str(exc), EXIT_STARTUP)


@click.command()
@json_option
def plugins(as_json: bool) -> None:
    """List installed plugins: name, distribution, version and hooks."""
    infos = describe_plugins(cli_plugins().pm)
    Answer(infos, lambda: _print_plugins(infos)).show(as_json)


def _print_plugins(infos: list[PluginInfo]) -> None:
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "(in-process)"
        click.echo(f"{info.name:<18} {origin:<28} {', '.join(info.hooks) or '-'}")


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the YAML here instead of standard output.")
def openapi(output: str | None) -> None:
    """Print (or write) the OpenAPI document of the REST API (YAML); needs no town or Redis."""
    from townhall.openapi_export import openapi_yaml

    text = openapi_yaml()
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")


@click.command()
@click.argument("name", required=False)
@click.option("--id", "agent_id", default=None, help="The agent record to serve (default: the one named NAME).")
@click.option("--cli", "cli_preset", default=None, help="CLI preset when a new agent record is registered.")
@pool_option
@click.pass_context
def worker(ctx: click.Context, name: str | None, agent_id: str | None, cli_preset: str | None,
           pool: str | None) -> None:
    """Run an agent worker (same as `tt agent-loop [NAME]`); without NAME, a pool worker."""
    serve_agent(town_dir(ctx), name, agent_id, cli_preset, pool)


COMMANDS = (rest, plugins, openapi, worker)
