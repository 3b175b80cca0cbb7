"""What every command shares: logging setup, the plugins, opening the town, errors as exit codes, and
the decorators that run a command against the town's services."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

import click

from townhall.cli.output import Answer, json_option
from townhall.config import ConfigError, Town, load_town
from townhall.domain_errors import REDIS_OUTAGE_ERRORS, DomainError, RedisUnavailable
from townhall.plugins import load_plugins
from townhall.registry import LoadedPlugins
from townhall.redis_clients import check_server
from townhall.runtime import Role, Runtime, open_runtime
from townhall.services.town import TownServices

T = TypeVar("T")

EXIT_STARTUP = 1
EXIT_REFUSED = 1
EXIT_CONFIG = 2

class _LineFormatter(logging.Formatter):
    """``%(asctime)s %(levelname)s %(name)s: %(message)s``, written out, its date and time formatted
    once per second: a server writes an audit line per mutating request, and the generic formatter
    costs a fifth of such a request's own work."""

    _second: int | None = None
    _text = ""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        return f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._text, record.msecs)


def setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    # What the line does not show is not collected for each record (the logging HOWTO's "Optimization":
    # the caller's file and line, the thread, the process).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("townhall", "tinytown"):
        logging.getLogger(name).setLevel(level)


def fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def load_town_or_exit(town_dir: str) -> Town:
    """The town's config, including the sections installed plugins own; config errors exit 2."""
    try:
        registry = cli_plugins().registry
        town = load_town(town_dir, plugin_tables=registry.config_sections)
        warnings = [*town.warnings, *registry.check_config(town)]
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    for warning in warnings:
        logging.getLogger("townhall.config").warning(warning)
    return town


@functools.cache
def cli_plugins() -> LoadedPlugins:
    """This CLI process's plugins, loaded once: for the commands they add and for every command's
    runtime."""
    return load_plugins()


class _RedisUnavailableAt(Exception):
    """:class:`RedisUnavailable` with where Redis was looked for, known only while the runtime is open."""

    def __init__(self, where: str, outage: RedisUnavailable) -> None:
        super().__init__(f"Redis unavailable at {where}: {outage.cause}")


def run_in_town(town_dir: str, action: Callable[[Runtime], Awaitable[T]], role: Role = Role.COMMAND) -> T:
    """Load the town, open its runtime (starting its private Redis when nothing answers; it is stopped
    again on exit unless another process of the town uses it) and run ``action(runtime)``. Config errors exit 2; refused operations (domain errors) and an
    unreachable Redis exit 1 with one line on standard error."""
    town = load_town_or_exit(town_dir)
    try:
        return asyncio.run(_run(town, action, role))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except (DomainError, _RedisUnavailableAt) as exc:
        fail(f"error: {exc}", EXIT_REFUSED)


async def _run(town: Town, action: Callable[[Runtime], Awaitable[T]], role: Role) -> T:
    async with open_runtime(town, cli_plugins(), role=role) as runtime:
        if role is Role.WORKER:
            # A worker would retry refused credentials or an untrusted certificate forever, as if Redis
            # were down: stop at once with the reason instead (ConfigError).
            await asyncio.to_thread(check_server, runtime.endpoint)
        try:
            return await action(runtime)
        except (RedisUnavailable, *REDIS_OUTAGE_ERRORS) as exc:
            outage = exc if isinstance(exc, RedisUnavailable) else RedisUnavailable(exc)
            raise _RedisUnavailableAt(runtime.endpoint.redacted, outage) from exc


def town_dir(ctx: click.Context) -> str:
    """The town directory given to the group (``tt --town DIR``) or after the command."""
    return ctx.obj["town_dir"]


def with_services(ctx: click.Context, action: Callable[[TownServices], Awaitable[T]]) -> T:
    """Open the town and run ``action(services)``."""
    return run_in_town(town_dir(ctx), lambda runtime: action(runtime.services))


def runtime_command(fn: Callable[..., Awaitable[Answer]]) -> Callable[..., None]:
    """Make ``async fn(runtime, **params) -> Answer`` a click callback that takes ``--json``, runs
    against the town and shows the answer."""

    @json_option
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, as_json: bool, **params: Any) -> None:
        run_in_town(town_dir(ctx), lambda runtime: fn(runtime, **params)).show(as_json)

    return wrapper


def services_command(fn: Callable[..., Awaitable[Answer]]) -> Callable[..., None]:
    """:func:`runtime_command` for ``async fn(services, **params) -> Answer``."""

    async def on_services(runtime: Runtime, **params: Any) -> Answer:
        return await fn(runtime.services, **params)

    return runtime_command(functools.wraps(fn)(on_services))
