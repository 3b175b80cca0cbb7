"""The ``tt`` console script: town setup and operations on the same services as REST."""

from __future__ import annotations

from pathlib import Path

import click

from townhall import __version__
from townhall.cli.common import setup_logging
from townhall.config import CONFIG_FILE, starter_config


@click.group()
@click.option("-t", "--town", "town_dir", default=".", show_default=True,
              help="Town directory containing tinytown.toml.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(__version__, prog_name="tt")
@click.pass_context
def tt(ctx: click.Context, town_dir: str, verbose: bool) -> None:
    """Tinytown command line."""
    setup_logging(verbose)
    ctx.obj = {"town_dir": town_dir}


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


def main() -> None:
    from townhall.plugins import make_plugin_manager
    from townhall.cli.townhall_cmd import cli

    make_plugin_manager().hook.townhall_register_commands(tt=tt, townhall=cli)
    tt()


if __name__ == "__main__":
    main()
