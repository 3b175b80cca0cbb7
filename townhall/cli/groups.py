"""The command tree: the ``tt`` and ``townhall`` groups, the core's commands in them, and the plugins'
commands (added once per process by :func:`register_plugin_commands`)."""

from __future__ import annotations

import functools

import click
from click_default_group import DefaultGroup

from townhall import __version__
from townhall.cli import agents, events, logs, messages, serve, tasks, town, up
from townhall.cli.common import cli_plugins, setup_logging
from townhall.cli.options import TownGroup, town_options


def _enter_town(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    setup_logging(verbose)
    ctx.obj = {"town_dir": town_dir}


@click.group(cls=TownGroup)
@town_options
@click.version_option(__version__, prog_name="tt")
@click.pass_context
def tt(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Tinytown command line."""
    _enter_town(ctx, town_dir, verbose)


class _DefaultTownGroup(TownGroup, DefaultGroup):
    """``townhall``'s group: a bare ``townhall [--town DIR]`` runs its default command, ``rest``."""


@click.group(cls=_DefaultTownGroup, default="rest", default_if_no_args=True, invoke_without_command=True)
@town_options
@click.version_option(__version__, prog_name="townhall")
@click.pass_context
def townhall(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Townhall: the REST control plane of a Tinytown town."""
    _enter_town(ctx, town_dir, verbose)
    if ctx.invoked_subcommand is None:  # `townhall --town X` with no command: serve
        ctx.invoke(serve.rest)


for _command in (*town.COMMANDS, *up.COMMANDS, *agents.COMMANDS, *tasks.COMMANDS, *messages.COMMANDS,
                 *logs.COMMANDS, *events.COMMANDS):
    tt.add_command(_command)
for _command in serve.COMMANDS:
    townhall.add_command(_command)


@functools.cache
def register_plugin_commands() -> None:
    """Let plugins add their commands to both groups (once per process)."""
    cli_plugins().pm.hook.townhall_register_commands(tt=tt, townhall=townhall)
