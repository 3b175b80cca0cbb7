"""What both console scripts share: logging setup, loading the town, turning errors into exit codes."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from townhall.config import ConfigError, Town, load_town

EXIT_STARTUP = 1
EXIT_CONFIG = 2


def setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("townhall", "tinytown"):
        logging.getLogger(name).setLevel(level)


def fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def load_town_or_exit(town_dir: str) -> Town:
    try:
        town = load_town(town_dir)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    for warning in town.warnings:
        logging.getLogger("townhall.config").warning(warning)
    return town
