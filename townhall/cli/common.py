"""What both console scripts share: logging setup, the plugins, opening the town, errors as exit codes."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from typing import Awaitable, Callable, NoReturn, TypeVar

import click

from townhall.config import ConfigError, Town, load_town
from townhall.domain_errors import DomainError
from townhall.plugins import load_plugins
from townhall.registry import LoadedPlugins
from townhall.runtime import Role, Runtime, open_runtime

T = TypeVar("T")

EXIT_STARTUP = 1
EXIT_REFUSED = 1
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


@functools.cache
def cli_plugins() -> LoadedPlugins:
    """This CLI process's plugins, loaded once: for the commands they add and for every command's
    runtime."""
    return load_plugins()


def run_in_town(town_dir: str, action: Callable[[Runtime], Awaitable[T]], role: Role = Role.COMMAND) -> T:
    """Load the town, open its runtime (starting its private Redis, detached, when nothing answers)
    and run ``action(runtime)``. Config errors exit 2, refused operations (domain errors) exit 1."""
    town = load_town_or_exit(town_dir)
    try:
        return asyncio.run(_run(town, action, role))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except DomainError as exc:
        fail(f"error: {exc}", EXIT_REFUSED)


async def _run(town: Town, action: Callable[[Runtime], Awaitable[T]], role: Role) -> T:
    async with open_runtime(town, cli_plugins(), role=role) as runtime:
        return await action(runtime)
