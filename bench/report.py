"""Rows of the benchmark table, printed side by side and written as JSON."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import msgspec


class Row(msgspec.Struct):
    section: str
    name: str
    reference: str  #: what the figure is compared with, e.g. "baseline"
    reference_value: float
    value: float
    unit: str
    #: value / reference_value for rates and latencies alike (see ``better``)
    ratio: float
    target: str = ""
    met: bool | None = None
    detail: str = ""


def print_table(rows: list[Row]) -> None:
    section = None
    header = f"{'':<34}{'reference':>16}{'townhall':>14}{'ratio':>8}  {'target':<20}"
    for row in rows:
        if row.section != section:
            section = row.section
            print(f"\n== {section}\n{header}")
        verdict = "" if row.met is None else ("ok" if row.met else "MISSED")
        print(f"{row.name:<34}{row.reference_value:>13.2f} {row.unit:<2}{row.value:>11.2f} {row.unit:<2}"
              f"{row.ratio:>8.2f}  {row.target:<20}{verdict:<7}  {row.detail}")


def write_json(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count()},
        "rows": msgspec.to_builtins(rows),
    }
    path.write_text(json.dumps(doc, indent=2))
