"""Named things contributed by plugins, and the registry that collects them by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import msgspec
import pluggy


class AuthModeSpec(msgspec.Struct, frozen=True):
    """An auth mode: ``factory(config: TownConfig) -> AuthMode``."""

    name: str
    factory: Callable[..., Any]
    summary: str = ""


class QueueBackendSpec(msgspec.Struct, frozen=True):
    """A queue backend: ``factory(store: TownStore) -> QueueBackend``."""

    name: str
    factory: Callable[..., Any]
    summary: str = ""


class ExporterSpec(msgspec.Struct, frozen=True):
    """A metrics exporter: ``factory(context: AppContext) -> litestar InitPlugin``."""

    name: str
    factory: Callable[..., Any]
    summary: str = ""


class LauncherSpec(msgspec.Struct, frozen=True):
    """An agent launcher: ``factory(config: TownConfig) -> Launcher``."""

    name: str
    factory: Callable[..., Any]
    summary: str = ""


S = TypeVar("S", AuthModeSpec, QueueBackendSpec, ExporterSpec, LauncherSpec)


class Registered(msgspec.Struct, Generic[S], frozen=True):
    spec: S
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
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Registered[S]] = {}

    def add(self, spec: S, plugin: str, distribution: str | None) -> None:
        if spec.name in self._items:
            other = self._items[spec.name].plugin
            raise ValueError(f"{self.kind} '{spec.name}' registered twice (by {other} and {plugin})")
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


@dataclass
class PluginRegistry:
    """What the installed plugins registered, by kind and name."""

    auth_modes: NamedRegistry[AuthModeSpec] = field(default_factory=lambda: NamedRegistry("auth mode"))
    queue_backends: NamedRegistry[QueueBackendSpec] = field(
        default_factory=lambda: NamedRegistry("queue backend")
    )
    exporters: NamedRegistry[ExporterSpec] = field(
        default_factory=lambda: NamedRegistry("metrics exporter")
    )
    launchers: NamedRegistry[LauncherSpec] = field(default_factory=lambda: NamedRegistry("launcher"))


@dataclass(frozen=True)
class LoadedPlugins:
    """A process's plugin manager and its registry, built together once (``load_plugins``)."""

    pm: pluggy.PluginManager
    registry: PluginRegistry
