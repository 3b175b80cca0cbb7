"""Reloading ``tinytown.toml`` into a running townhall (``SIGHUP``): which settings change at once and
which only at the next start.

Every service reads the town's config through the one :class:`~townhall.config.Town` the runtime was
built with, so a setting is hot-reloadable when it is read per request: the CLI presets, the default
presets, ``max_agents`` and the ``[agent]`` timings. What was turned into objects at startup (the listening
socket, TLS, auth mode, Redis clients, the launcher, the queue backend, limits built into middleware) is
reported as needing a restart and left as it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import msgspec

from townhall.config import ConfigError, Town, TownConfig, load_town
from townhall.registry import LoadedPlugins

log = logging.getLogger("townhall")

#: Top-level keys applied to a running townhall.
HOT_KEYS = frozenset({"agent_clis", "default_cli", "conductor_cli", "max_agents"})
#: ``[agent]`` keys that are not: the launcher object is built at startup.
COLD_AGENT_KEYS = frozenset({"launcher"})


class ReloadReport(msgspec.Struct, frozen=True):
    """What a reload changed (dotted keys), and what changed in the file but waits for a restart."""

    applied: list[str]
    needs_restart: list[str]


def apply_reload(running: Town, fresh: Town) -> ReloadReport:
    """Copy the hot-reloadable settings of ``fresh`` (the file as it is now) into ``running`` in place."""
    applied: list[str] = []
    needs_restart: list[str] = []
    current, wanted = running.config, fresh.config
    for field in msgspec.structs.fields(TownConfig):
        old, new = getattr(current, field.name), getattr(wanted, field.name)
        if old == new:
            continue
        if field.name in HOT_KEYS:
            setattr(current, field.name, new)
            applied.append(field.encode_name)
        elif field.name == "agent":
            for sub in msgspec.structs.fields(type(old)):
                if getattr(old, sub.name) == getattr(new, sub.name):
                    continue
                if sub.name in COLD_AGENT_KEYS:
                    needs_restart.append(f"agent.{sub.encode_name}")
                else:
                    setattr(old, sub.name, getattr(new, sub.name))
                    applied.append(f"agent.{sub.encode_name}")
        else:
            needs_restart.append(field.encode_name)
    return ReloadReport(applied=applied, needs_restart=needs_restart)


def reload_config(town: Town, plugins: LoadedPlugins) -> None:
    """Read ``tinytown.toml`` again and apply what can change while running (``SIGHUP``). A file that
    does not load is refused whole, with its error, and the running config stays as it was."""
    try:
        fresh = load_town(town.root_as_given, plugin_tables=plugins.registry.config_sections)
        warnings = [*fresh.warnings, *plugins.registry.check_config(fresh)]
    except ConfigError as exc:
        log.error("🔄 config reload refused, the running config is unchanged: %s", exc)
        return
    for warning in warnings:
        logging.getLogger("townhall.config").warning(warning)
    report = apply_reload(town, fresh)
    presets = ", ".join(sorted(town.config.agent_clis)) or "none"
    log.info("🔄 config reloaded: %s (configured presets: %s)",
             ", ".join(report.applied) or "nothing changed", presets)
    if report.needs_restart:
        log.warning("🔄 changed in tinytown.toml, applied only when townhall restarts: %s",
                    ", ".join(report.needs_restart))


def hangup_handler(town: Town, plugins: LoadedPlugins) -> Callable[..., None]:
    """A ``SIGHUP`` handler that reloads ``town``'s config (:func:`reload_config`).

    Python runs a signal handler between two bytecodes of the main thread, which may be in the middle
    of a request's step; the reload itself is scheduled as a loop callback, between two steps, so a
    request step never sees half the config changed."""

    def on_hangup(*_: object) -> None:
        loop = asyncio._get_running_loop()
        if loop is None:
            reload_config(town, plugins)
        else:
            loop.call_soon_threadsafe(reload_config, town, plugins)

    return on_hangup
