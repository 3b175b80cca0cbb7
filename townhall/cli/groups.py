"""The two command groups, ``tt`` and ``townhall``, with their shared options; commands are added to them
by :mod:`townhall.cli.tt_cmd`, :mod:`townhall.cli.townhall_cmd` and by plugins (once per process)."""

from __future__ import annotations

import functools

import click
from click_default_group import DefaultGroup

from townhall import __version__
from townhall.cli.common import cli_plugins, setup_logging


def _town_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("-v", "--verbose", is_flag=True, help="Debug logging.")(fn)
    return click.option("-t", "--town", "town_dir", default=".", show_default=True,
                        help="Town directory containing tinytown.toml.")(fn)


@click.group()
@_town_options
@click.version_option(__version__, prog_name="tt")
@click.pass_context
def tt(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Tinytown command line."""
    setup_logging(verbose)
    ctx.obj = {"town_dir": town_dir}


@click.group(cls=DefaultGroup, default="rest", default_if_no_args=True, invoke_without_command=True)
@_town_options
@click.version_option(__version__, prog_name="townhall")
@click.pass_context
def townhall(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Townhall: the REST control plane of a Tinytown town."""
    setup_logging(verbose)
    ctx.obj = {"town_dir": town_dir}
    if ctx.invoked_subcommand is None:  # `townhall --town X` with no command: serve
        rest = townhall.get_command(ctx, "rest")
        assert rest is not None
        ctx.invoke(rest)


@functools.cache
def register_plugin_commands() -> None:
    """Let plugins add their commands to both groups (once per process)."""
    cli_plugins().pm.hook.townhall_register_commands(tt=tt, townhall=townhall)
