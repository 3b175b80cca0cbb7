"""Reloading ``tinytown.toml`` into a running townhall (``SIGHUP``): which settings change at once and
which only at the next start.

Every service reads the town's config through the one :class:`~townhall.config.Town` the runtime was
built with, so a setting is hot-reloadable when it is read per request: the CLI presets, the default
presets, ``max_agents`` and the ``[agent]`` timings. What was turned into objects at startup (the listening
socket, TLS, auth mode, Redis clients, the launcher, the queue backend, limits built into middleware) is
reported as needing a restart and left as it runs.
"""

from __future__ import annotations

import msgspec

from townhall.config import Town, TownConfig

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
