"""The town options, ``-t/--town DIR`` and ``-v``: accepted before the command (on the group, as
``tt --town DIR status``) and after it (``tt status --town DIR``); the one after the command wins."""

from __future__ import annotations

import click

from townhall.cli.common import setup_logging

TOWN_HELP = "Town directory containing tinytown.toml."
#: ``--start`` of the commands that hand work to an agent (``tt assign``, ``tt backlog claim``/``assign-all``,
#: ``tt reclaim --to``), as ``?start=true`` in the API.
start_option = click.option("--start", is_flag=True,
                            help="Restart the agent first if it is Stopped or Error (else refused).")
VERBOSE_HELP = "Debug logging."


def town_options(fn: click.decorators.FC) -> click.decorators.FC:
    """The options of a top-level group; its callback receives ``town_dir`` and ``verbose``."""
    fn = click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)(fn)
    return click.option("-t", "--town", "town_dir", default=".", show_default=True, help=TOWN_HELP)(fn)


def _town_after(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["town_dir"] = value


def _verbose_after(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        setup_logging(True)


def _options_after_command() -> list[click.Parameter]:
    # Not passed to the callback: they only update what the group's options set.
    return [
        click.Option(["-t", "--town", "town_dir"], default=None, expose_value=False, callback=_town_after,
                     help=TOWN_HELP),
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbose_after,
                     help=VERBOSE_HELP),
    ]


class TownGroup(click.Group):
    """A group whose commands (its own, its subgroups' and plugins') also accept the town options
    after their name."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group) and not any(p.name == "town_dir" for p in cmd.params):
            cmd.params.extend(_options_after_command())
        super().add_command(cmd, name)


#: ``group.group()`` makes subgroups that do the same.
TownGroup.group_class = TownGroup
