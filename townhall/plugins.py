"""The plugin manager: discovery through the ``townhall`` entry-point group, and the named registries.

``TOWNHALL_LOAD_PLUGINS=a,b`` loads only those entry points (an empty value loads none);
``TOWNHALL_DISABLE_PLUGINS=a,b`` blocks those. Both help with a broken install and in tests.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pluggy

from townhall import hookspecs
from townhall.registry import LoadedPlugins, NamedRegistry, PluginRegistry

GROUP = "townhall"


def make_plugin_manager(
    only: list[str] | None = None, extra: list[tuple[str, object]] | None = None
) -> pluggy.PluginManager:
    """Build a fresh manager; ``extra`` registers in-process plugins (tests use it)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in _split(os.environ.get("TOWNHALL_DISABLE_PLUGINS")):
        pm.set_blocked(name)
    allow = only
    if allow is None and "TOWNHALL_LOAD_PLUGINS" in os.environ:
        allow = _split(os.environ["TOWNHALL_LOAD_PLUGINS"])
    if allow is None:
        pm.load_setuptools_entrypoints(GROUP)
    else:
        for name in allow:
            pm.load_setuptools_entrypoints(GROUP, name=name)
    for name, plugin in extra or []:
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def load_plugins(only: list[str] | None = None, extra: list[tuple[str, object]] | None = None) -> LoadedPlugins:
    """The plugin manager and the registry of what its plugins registered: built once per process
    (the composition root, :mod:`townhall.runtime`, takes it from here)."""
    pm = make_plugin_manager(only, extra)
    return LoadedPlugins(pm=pm, registry=collect_registry(pm))


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def collect_registry(pm: pluggy.PluginManager) -> PluginRegistry:
    """Call every register-style hook plugin by plugin, so each name knows which plugin gave it."""
    registry = PluginRegistry()
    dists = _distributions(pm)
    hooks: list[tuple[str, NamedRegistry[Any]]] = [
        ("townhall_register_auth_modes", registry.auth_modes),
        ("townhall_register_queue_backends", registry.queue_backends),
        ("townhall_register_metrics_exporters", registry.exporters),
        ("townhall_register_launchers", registry.launchers),
    ]
    for hook_name, target in hooks:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
            impl.function(register=lambda spec, _p=plugin_name, _t=target: _t.add(spec, _p, dists.get(_p)))
    for impl in pm.hook.townhall_register_config_sections.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        impl.function(register=lambda section, _p=plugin_name: registry.add_config_section(section, _p, dists.get(_p)))
    return registry


class PluginInfo(msgspec.Struct):
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]


def _distributions(pm: pluggy.PluginManager) -> dict[str, str]:
    return {pm.get_name(plugin) or "": dist.project_name for plugin, dist in pm.list_plugin_distinfo()}


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, distribution, version and hooks of every loaded plugin (for ``townhall plugins``)."""
    versions = {pm.get_name(p): (d.project_name, d.version) for p, d in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked names stay listed with no plugin object
            continue
        dist, version = versions.get(name, (None, None))
        callers = pm.get_hookcallers(plugin) or []
        infos.append(PluginInfo(name=name, distribution=dist, version=version,
                                hooks=sorted(c.name for c in callers)))
    return sorted(infos, key=lambda info: info.name)

