"""How every command answers: with ``--json`` the data as JSON, otherwise a line or ``rich`` tables.

Plugin commands may use these too, so that ``tt`` answers one way whoever added the command.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Callable

import click
import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: Piped output is not cut to 80 columns: a script or a log gets whole lines.
console = Console(width=None if sys.stdout.isatty() else 10_000)

#: The ``--json`` flag of every command that prints something a script may want.
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """``value`` (msgspec Structs, enums and datetimes included) as JSON on standard output."""
    click.echo(json.dumps(msgspec.to_builtins(value), indent=indent, default=str))


@dataclass(frozen=True)
class Answer:
    """What a command answers: ``data`` for ``--json``, and ``human`` for a person — a line, or a
    function that prints tables and lines (called only when a person reads the answer)."""

    data: Any
    human: str | Callable[[], None]

    def show(self, as_json: bool, *, indent: int | None = 2) -> None:
        if as_json:
            print_json(self.data, indent=indent)
        elif isinstance(self.human, str):
            click.echo(self.human)
        else:
            self.human()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table; ``None`` cells are blank. Cells are plain text: a task's or an agent's words may
    contain square brackets, which rich would otherwise read as markup (and crash on ``[/red]``)."""
    t = Table(title=title, show_lines=False)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*[Text(cell_text(v)) for v in row])
    console.print(t)


def cell_text(value: Any) -> str:
    """How a value reads in a table: blank for ``None``, lists as ``a, b``, enums by their value."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value)
    return str(getattr(value, "value", value))
