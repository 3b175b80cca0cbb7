"""A townhall process for a test's town, stopped by the ``procs`` fixture (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from townhall.testing.process import TownhallProcess
from townhall.testing.towns import append_config


def serve(town_dir: Path, procs: list[TownhallProcess], config: str = "") -> TownhallProcess:
    """Start townhall on ``town_dir`` with ``config`` appended to its ``tinytown.toml``."""
    if config:
        append_config(town_dir, config)
    proc = TownhallProcess(town_dir).start()
    procs.append(proc)
    return proc
