"""Hook specifications: the plugin author's manual.

A plugin is an importable module (or object) named in the ``townhall`` entry-point group of its
distribution::

    [project.entry-points.townhall]
    my_plugin = "my_package.plugin"

and implementing one or more of the hooks below with :data:`townhall.hookimpl`. Every hook name starts
with ``townhall_``. Hooks that contribute named things (auth modes, queue backends, metrics exporters,
launchers) receive a ``register`` callback; call it once per thing with a
:class:`townhall.registry.PluginSpec` (``name``, ``factory``, ``summary``, ``config_type``).
``AuthModeSpec``, ``QueueBackendSpec``, ``ExporterSpec`` and ``LauncherSpec`` are that one class typed
with the kind's factory. Names must be unique across all installed plugins; ``tinytown.toml`` picks one
by name, and an unknown name fails at startup with a message listing what is installed.

A thing with settings declares their msgspec type as ``config_type``; the core converts the kind's
table (``[townhall.auth]`` for auth modes) to it and passes the typed value to the factory. The keys
users write stay in that table beside the core's own (``mode``). A value of the wrong type stops
startup with one line naming the file and the key (``townhall: tinytown.toml: townhall.auth.issuer:
expected str | null, got 1``); a key that neither the core nor any installed plugin of that kind declares is
logged as a warning (``unknown key 'townhall.auth.isuer' (ignored)``). Give every field a default and
check what must be set in the factory, with a sentence that says what to do. Settings that fit no such
table go under ``[plugins.<name>]``, which the core leaves to the plugin.

Hooks are synchronous and are called once per process (at app or CLI construction). Do asynchronous work
inside the objects you register, never in the hook itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    import click
    from litestar.config.app import AppConfig

    from townhall.context import AppContext
    from townhall.registry import AuthModeSpec, ConfigSection, ExporterSpec, LauncherSpec, QueueBackendSpec

hookspec = pluggy.HookspecMarker("townhall")


@hookspec
def townhall_register_auth_modes(register: Callable[[AuthModeSpec], None]) -> None:
    """Register authentication modes, selected by ``[townhall.auth] mode``.

    Called once when the plugin registry is built. Call ``register(AuthModeSpec(name=..., factory=...,
    config_type=..., summary=...))`` for each mode. ``factory(settings)`` receives the mode's settings:
    ``[townhall.auth]`` converted to its ``config_type`` (``None`` when it declares none). It returns
    an object satisfying
    :class:`townhall.auth.AuthMode`: an ``authenticate(request)`` coroutine that turns the request's
    headers and client address into a :class:`townhall.auth.Principal`, returns ``None`` when the request
    carries no credentials at all, or raises :class:`townhall.auth.InvalidCredentials` for bad ones.

    The factory runs at startup: validate your configuration there and raise
    :class:`townhall.config.ConfigError` with one clear sentence (it becomes the startup error line,
    exit status 1). Scope checks, 401/403 rendering, ``WWW-Authenticate`` and the audit log are done by
    the core; a mode only decides *who* is calling and which scopes they hold.

    Example::

        class HeaderConfig(msgspec.Struct, kw_only=True):
            user_header: str = "X-User"          # [townhall.auth] user_header = "..."

        @hookimpl
        def townhall_register_auth_modes(register):
            register(AuthModeSpec(name="header", factory=HeaderAuth.from_config,
                                  config_type=HeaderConfig, summary="trust X-User from a proxy"))
    """


@hookspec
def townhall_register_queue_backends(register: Callable[[QueueBackendSpec], None]) -> None:
    """Register queue backends: how shared (backlog) work travels from townhall to workers.

    The core ships ``lists`` (the backlog list plus per-worker processing lists) and ``streams`` (the
    docket stream ``tt:{town}:docket:tasks`` with consumer group ``workers``), both registered through
    this hook. ``use_streams = true`` selects ``streams``; ``[townhall] queue_backend = "name"`` selects
    any registered backend by name.

    ``register(QueueBackendSpec(name=..., factory=..., summary=...))``; ``factory(store)`` receives the
    :class:`townhall.store.TownStore` and returns an object satisfying
    :class:`townhall.queues.QueueBackend` (add_task, enqueue, withdraw, measure, requeue_dead, sweep,
    and ``consumer()``: each worker's :class:`townhall.queues.QueueConsumer`, which takes,
    acknowledges and gives back deliveries). A backend must deliver each task at least once: never
    drop a task a worker took until the worker acknowledges it.
    """


@hookspec
def townhall_register_metrics_exporters(register: Callable[[ExporterSpec], None]) -> None:
    """Register metrics exporters, enabled by ``[townhall.metrics] exporters`` (default: all installed).

    ``register(ExporterSpec(name=..., factory=..., summary=...))``. ``factory(context)`` receives the
    :class:`townhall.context.AppContext` (config, store, services) and returns a Litestar init plugin
    (an object with ``on_app_init(app_config) -> AppConfig``), which may add routes such as
    ``GET /metrics`` and middleware that observes requests. Several exporters can be enabled at once
    (e.g. Prometheus and OpenTelemetry); each owns its routes and must not clash with another's.
    """


@hookspec
def townhall_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    """Declare the config tables your plugin owns alone, e.g. ``[townhall.mcp]``.

    Called once when the plugin registry is built. Call ``register(ConfigSection(table="townhall.mcp",
    config_type=McpSettings, summary=...))`` for each table: ``table`` is its dotted path in
    ``tinytown.toml``, ``config_type`` a msgspec struct of its keys. Every ``townhall``/``tt`` command then
    checks the table when it loads the town — a bad value stops it with exit status 2 and a line naming
    the file and the key, an unknown key inside the table is a warning — and no longer warns that the
    table itself is unknown. Read the typed value with ``townhall.config.table_config(town.raw, table,
    config_type)``. Tables shared by several plugins (``[townhall.auth]``) are declared through the
    ``config_type`` of each auth mode's spec instead. Two plugins declaring the same table is an error.
    """


@hookspec
def townhall_register_launchers(register: Callable[[LauncherSpec], None]) -> None:
    """Register agent launchers, selected by ``[agent] launcher`` (default ``local``).

    A launcher starts the worker process for an agent record that townhall has just created
    (``POST /v1/agents``) or restarted. ``register(LauncherSpec(name=..., factory=..., summary=...))``;
    ``factory(config)`` returns an object satisfying :class:`townhall.launchers.Launcher`: an
    ``async launch(agent, town_root)`` coroutine, and optionally a ``preflight(town, cli)`` check
    (:class:`townhall.launchers.CheckedLauncher`: raise ``InvalidInput`` when the preset could not run,
    e.g. its program is not on ``PATH``). The core ships ``local`` (a detached
    ``tt agent-loop`` process) and ``none`` (record only: an external orchestrator starts workers,
    which register themselves). Never run a command string that came from a request: the agent's
    ``cli`` names a preset from ``[agent_clis]``.
    """


@hookspec
def townhall_register_commands(tt: click.Group, townhall: click.Group) -> None:
    """Add CLI commands to the ``tt`` and/or ``townhall`` command groups.

    Called once when either console script starts. Use ``tt.command()`` / ``tt.group()`` (or the
    ``townhall`` group) as you would in any click application; commands should offer ``--json`` when
    their output is meant for scripts. Example: the ``auth_apikey`` plugin adds ``tt auth gen-key``.
    """


@hookspec
def townhall_setup_app(app_config: AppConfig, context: AppContext) -> None:
    """Adjust the Litestar application before it is built: add routes, middleware, lifespan hooks.

    Called once per app, after the core has filled ``app_config`` with its own routes, middleware and
    exception handlers. Append to ``app_config.route_handlers``, ``app_config.middleware``,
    ``app_config.on_startup`` etc. ``context`` gives the loaded config and the services. Routes you add
    under ``/v1`` must declare a scope with ``opt={"scope": Scope.TOWN_READ}`` so the core's auth
    and scope guard cover them: a ``/v1`` route without one stops startup. Routes outside ``/v1``
    without a scope are public. Websocket routes pass the same guard when they open: refused, they are
    closed with 4000 + the HTTP status (4401 no or bad credentials, 4403 missing scope, 4429 limited).

    The guard of HTTP routes is the app's ``before_request`` hook: a route (or a router or controller)
    that sets a ``before_request`` of its own would replace it, so such a route stops startup too. To
    see every response (its status and headers, as the metrics plugin counts them), append a function
    of ``(message, scope)`` to ``context.response_observers``: it is called at each response start,
    synchronously, and must be quick and never raise.
    """
