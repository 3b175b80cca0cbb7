"""Named things contributed by plugins, and the registry that collects them by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

import msgspec
import pluggy

from townhall.config import Town, TownConfig, table_config, unknown_table_keys

if TYPE_CHECKING:
    from litestar.plugins import InitPluginProtocol

    from townhall.auth import AuthMode
    from townhall.launchers import Launcher
    from townhall.queues import QueueBackend
    from townhall.store import TownStore


F = TypeVar("F", bound=Callable[..., Any])


class PluginSpec(msgspec.Struct, Generic[F], frozen=True):
    """One named thing a plugin registers: an auth mode, a queue backend, a metrics exporter, a launcher.

    ``factory`` builds it (its arguments depend on the kind, see the hook specs). ``config_type`` is the
    msgspec type of the thing's settings, for kinds that read settings from a config table (auth modes:
    ``[townhall.auth]``); the core converts that table to it and passes the typed value to the factory.
    """

    name: str
    factory: F
    summary: str = ""
    config_type: type | None = None


#: ``factory(settings)``: ``settings`` is the spec's ``config_type`` value, or ``None`` without one.
AuthModeFactory = Callable[[Any], "AuthMode"]
QueueBackendFactory = Callable[["TownStore"], "QueueBackend"]
#: ``factory(context)`` with the :class:`townhall.context.AppContext` (not named here: the context holds
#: the registry, so naming it would make the two modules import each other).
ExporterFactory = Callable[[Any], "InitPluginProtocol"]
LauncherFactory = Callable[[TownConfig], "Launcher"]

AuthModeSpec = PluginSpec[AuthModeFactory]
QueueBackendSpec = PluginSpec[QueueBackendFactory]
ExporterSpec = PluginSpec[ExporterFactory]
LauncherSpec = PluginSpec[LauncherFactory]

S = TypeVar("S", bound=PluginSpec[Any])


class ConfigSection(msgspec.Struct, frozen=True):
    """A config table a plugin owns alone, e.g. ``[townhall.mcp]``: ``table`` is its dotted path and
    ``config_type`` the msgspec type of its keys. The core checks it when a command loads the town (a bad
    value exits 2 naming the file and the key; an unknown key is a warning) instead of calling the table
    itself unknown."""

    table: str
    config_type: type
    summary: str = ""


R = TypeVar("R")


class Registered(msgspec.Struct, Generic[R], frozen=True):
    spec: R
    plugin: str
    distribution: str | None


class UnknownPluginName(LookupError):
    """A config names a mode/backend/exporter/launcher that no installed plugin provides."""

    def __init__(self, kind: str, name: str, installed: list[str], hint: str | None) -> None:
        self.kind, self.name, self.installed = kind, name, installed
        listing = ", ".join(installed) or "none"
        message = f"unknown {kind} '{name}' (installed: {listing})"
        if hint:
            message += f"; install it with `pip install {hint}`"
        super().__init__(message)


# Well-known names shipped as separate packages, so the error can say what to install.
KNOWN_PACKAGES = {
    ("auth mode", "api_key"): "townhall-auth-apikey",
    ("auth mode", "oidc"): "townhall-auth-oidc",
    ("metrics exporter", "prometheus"): "townhall-metrics",
}


class NamedRegistry(Generic[S]):
    """The specs of one kind, by name. ``table`` is the dotted config table (a
    :class:`townhall.config.PluginTable`) this kind's specs read their ``config_type`` from."""

    def __init__(self, kind: str, table: str | None = None) -> None:
        self.kind = kind
        self.table = table
        self._items: dict[str, Registered[S]] = {}

    def add(self, spec: S, plugin: str, distribution: str | None) -> None:
        if spec.name in self._items:
            other = self._items[spec.name].plugin
            raise ValueError(f"{self.kind} '{spec.name}' registered twice (by {other} and {plugin})")
        if spec.config_type is not None and self.table is None:
            raise ValueError(f"{self.kind} '{spec.name}' (by {plugin}) declares a config_type, "
                             f"but a {self.kind} reads no config table")
        self._items[spec.name] = Registered(spec=spec, plugin=plugin, distribution=distribution)

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> S:
        try:
            return self._items[name].spec
        except KeyError:
            hint = KNOWN_PACKAGES.get((self.kind, name))
            raise UnknownPluginName(self.kind, name, self.names(), hint) from None

    def entries(self) -> list[Registered[S]]:
        return [self._items[n] for n in self.names()]

    def settings(self, spec: S, town: Town) -> Any:
        """``spec``'s settings: this kind's table of ``town`` as its ``config_type`` (``None`` when it
        declares none). Raises :class:`townhall.config.ConfigError` naming the file and the key."""
        if self.table is None or spec.config_type is None:
            return None
        return table_config(town.raw, self.table, spec.config_type)

    def unknown_keys(self, town: Town) -> list[str]:
        """A warning for each key of this kind's table that neither the core nor any installed spec of
        this kind knows."""
        if self.table is None:
            return []
        types = [entry.spec.config_type for entry in self.entries() if entry.spec.config_type is not None]
        return unknown_table_keys(town.raw, self.table, types)


@dataclass
class PluginRegistry:
    """What the installed plugins registered, by kind and name."""

    auth_modes: NamedRegistry[AuthModeSpec] = field(
        default_factory=lambda: NamedRegistry("auth mode", table="townhall.auth")
    )
    queue_backends: NamedRegistry[QueueBackendSpec] = field(
        default_factory=lambda: NamedRegistry("queue backend")
    )
    exporters: NamedRegistry[ExporterSpec] = field(
        default_factory=lambda: NamedRegistry("metrics exporter")
    )
    launchers: NamedRegistry[LauncherSpec] = field(default_factory=lambda: NamedRegistry("launcher"))
    #: Config tables owned by one plugin each, by dotted path.
    config_sections: dict[str, Registered[ConfigSection]] = field(default_factory=dict)

    def add_config_section(self, section: ConfigSection, plugin: str, distribution: str | None) -> None:
        if section.table in self.config_sections:
            other = self.config_sections[section.table].plugin
            raise ValueError(f"config table [{section.table}] declared twice (by {other} and {plugin})")
        self.config_sections[section.table] = Registered(spec=section, plugin=plugin, distribution=distribution)

    def check_config(self, town: Town) -> list[str]:
        """Check the plugin-owned config of ``town`` when it is loaded, as the core checks its own: the
        selected auth mode's table against its type (:class:`townhall.config.ConfigError` naming the file
        and the key), and warnings for keys no installed plugin knows. An unknown mode name is left to
        startup, which names the package to install."""
        modes = self.auth_modes
        if town.config.townhall.auth.mode in modes.names():
            modes.settings(modes.get(town.config.townhall.auth.mode), town)
        warnings = modes.unknown_keys(town)
        for table, entry in sorted(self.config_sections.items()):
            table_config(town.raw, table, entry.spec.config_type)
            warnings += unknown_table_keys(town.raw, table, [entry.spec.config_type])
        return warnings


@dataclass(frozen=True)
class LoadedPlugins:
    """A process's plugin manager and its registry, built together once (``load_plugins``)."""

    pm: pluggy.PluginManager
    registry: PluginRegistry
