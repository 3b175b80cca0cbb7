"""The ``townhall`` console script; a bare ``townhall`` runs ``townhall rest``."""

from __future__ import annotations

import json

import click
import msgspec
from click_default_group import DefaultGroup

from townhall import __version__
from townhall.cli.common import EXIT_STARTUP, fail, load_town_or_exit, setup_logging
from townhall.plugins import describe_plugins, make_plugin_manager
from townhall.startup_checks import StartupError


@click.group(cls=DefaultGroup, default="rest", default_if_no_args=True, invoke_without_command=True)
@click.option("-t", "--town", "town_dir", default=".", show_default=True,
              help="Town directory containing tinytown.toml.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(__version__, prog_name="townhall")
@click.pass_context
def cli(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Townhall: the REST control plane of a Tinytown town."""
    setup_logging(verbose)
    ctx.obj = {"town_dir": town_dir}
    if ctx.invoked_subcommand is None:  # `townhall --town X` with no command: serve
        ctx.invoke(rest)


@cli.command()
@click.option("-b", "--bind", default=None, help="Bind address (default: [townhall].bind).")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [townhall].rest_port).")
@click.pass_context
def rest(ctx: click.Context, bind: str | None, port: int | None) -> None:
    """Serve the REST API (the default command)."""
    from townhall.server import serve

    town = load_town_or_exit(ctx.obj["town_dir"])
    try:
        serve(town, bind or town.config.townhall.bind, town.config.townhall.rest_port if port is None else port)
    except StartupError as exc:
        fail(str(exc), EXIT_STARTUP)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, distribution, version and hooks."""
    infos = describe_plugins(make_plugin_manager())
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(infos), indent=2))
        return
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "(in-process)"
        click.echo(f"{info.name:<18} {origin:<28} {', '.join(info.hooks) or '-'}")


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the YAML here instead of standard output.")
def openapi(output: str | None) -> None:
    """Print (or write) the OpenAPI document of the REST API (YAML); needs no town or Redis."""
    from townhall.openapi_export import openapi_yaml

    text = openapi_yaml()
    if output is None:
        click.echo(text, nl=False)
        return
    from pathlib import Path

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")


@cli.command()
@click.argument("name")
@click.option("--id", "agent_id", default=None, help="The agent record to serve (default: the one named NAME).")
@click.option("--cli", "cli_preset", default=None, help="CLI preset when a new agent record is registered.")
@click.pass_context
def worker(ctx: click.Context, name: str, agent_id: str | None, cli_preset: str | None) -> None:
    """Run an agent worker (same as `tt agent-loop NAME`)."""
    import asyncio
    import sys

    from townhall.cli.tt_cmd import redis_url_for
    from townhall.worker import run_worker

    town = load_town_or_exit(ctx.obj["town_dir"])
    sys.exit(asyncio.run(run_worker(town, redis_url_for(town), name, agent_id, cli_preset)))


def _register_plugin_commands() -> None:
    from townhall.cli.tt_cmd import tt

    make_plugin_manager().hook.townhall_register_commands(tt=tt, townhall=cli)


def main() -> None:
    _register_plugin_commands()
    cli()
