"""``townhall rest``: validate, find or start Redis, build the app and serve it with uvicorn."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import ssl
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import uvicorn

from townhall.app import create_app, load_auth_mode
from townhall.config import ConfigError, Town
from townhall.config_reload import hangup_handler, reload_config
from townhall.connection_guard import ConnectionGuard, ConnectionLimits
from townhall.readiness import notify_ready
from townhall.redis_clients import check_server
from townhall.redis_endpoint import release_private_server, resolve_endpoint
from townhall.registry import LoadedPlugins, UnknownPluginName
from townhall.runtime import Role, build_runtime
from townhall.server_processes import ServerProcessApp, serve_processes, shared_dir
from townhall.startup_checks import (
    StartupError,
    check_bind_safety,
    check_tls,
    display_addr,
)

log = logging.getLogger("townhall")


def serve(town: Town, plugins: LoadedPlugins, bind: str, port: int, workers: int | None = None,
          setup_logging: Callable[[], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM, from ``workers`` processes (default ``[townhall] workers``; with more
    than one, ``setup_logging`` is called in each new process). Raises ``StartupError`` for anything
    that must stop startup."""
    workers = town.config.townhall.workers if workers is None else workers
    try:
        auth = load_auth_mode(town, plugins.registry)
    except (UnknownPluginName, ConfigError) as exc:
        raise StartupError(f"townhall: {str(exc).removeprefix('townhall: ')}") from None
    check_bind_safety(town.config, bind, port)
    tls = check_tls(town)
    try:
        endpoint, _ = resolve_endpoint(town)
        check_server(endpoint)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    try:
        if workers > 1:
            app: Any = ServerProcessApp(town=town, endpoint=endpoint, setup_logging=setup_logging)
        else:
            try:
                runtime = build_runtime(town, plugins, role=Role.SERVER, endpoint=endpoint)
                app = create_app(runtime, auth=auth)
            except (UnknownPluginName, ConfigError) as exc:
                raise StartupError(f"townhall: {str(exc).removeprefix('townhall: ')}") from None
        log.info("🏛️  Townhall starting for town: %s", town.name)
        log.info("🗄️  Redis: %s%s", endpoint.redacted, " (private server)" if endpoint.private else "")
        log.info("🔐 Auth mode: %s", town.config.townhall.auth.mode)
        guard = ConnectionGuard(connection_limits(town))
        config = uvicorn.Config(
            app,
            factory=workers > 1,
            workers=workers,
            host=bind.strip("[]"),
            port=port,
            loop="uvloop",
            # Per process: each has its own guard (and connections); picklable for the processes.
            http=guard.protocol_factory(),  # type: ignore[arg-type]  # uvicorn only calls it
            # The guard keeps at most max_connections open; uvicorn's own check (503) catches the
            # newcomer when every one of them is running a request.
            limit_concurrency=guard.limits.max_connections + 1,
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            ssl_certfile=tls.cert_file if tls else None,
            ssl_keyfile=tls.key_file if tls else None,
            ssl_ca_certs=tls.ca_file if tls else None,
            ssl_cert_reqs=tls.cert_reqs if tls else ssl.CERT_NONE,
        )
        if tls:
            log.info("🔒 TLS enabled")
        mtls = town.config.townhall.mtls
        if mtls.enabled or mtls.required:
            log.info("🔒 mTLS enabled (required: %s)", str(mtls.required).lower())
        listener = listen(bind, port)
        scheme = "https" if tls else "http"
        if workers > 1:
            log.info("👥 %d server processes", workers)
        log.info("🚀 REST API listening on %s://%s", scheme, display_addr(bind, port))
        if workers > 1:
            # SIGHUP: the parent reloads its copy (what it gives processes it starts later) and passes
            # the signal on to every server process, which reloads its own.
            if not serve_processes(config, listener, shared_dir(town, port),
                                   on_hangup=lambda: reload_config(town, plugins)):
                raise StartupError(f"❌ FATAL: could not serve on {display_addr(bind, port)}: a server "
                                   "process failed to start (see above)")
        else:
            server = _Server(runtime.end_streams, config)
            # SIGHUP reloads the config of this one process.
            with _graceful_signals(), _reload_on_hangup(town, plugins):
                server.run(sockets=[listener])
            if not server.started:
                raise StartupError(f"❌ FATAL: could not serve on {display_addr(bind, port)}")
    finally:
        # The town's workers may still use the private server: the last process out stops it.
        if endpoint.private:
            stopped = release_private_server(endpoint)
            log.info("private Redis %s", "stopped" if stopped else "left running for the town's other processes")


class _Server(uvicorn.Server):
    """uvicorn's graceful shutdown waits for every open response before the app's lifespan ends, and an
    event stream or a followed log never ends by itself: ``before_shutdown`` ends them first, so SIGTERM
    with clients connected to ``GET /v1/events`` (they resume elsewhere with ``Last-Event-ID``) or
    following ``GET /v1/agents/{agent}/log?follow=true`` stops promptly."""

    def __init__(self, before_shutdown: Callable[[], None], config: uvicorn.Config) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            notify_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._before_shutdown()
        await super().shutdown(sockets=sockets)


def listen(bind: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says "listening": a port in use is one clear line."""
    host = bind.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StartupError(f"❌ FATAL: could not listen on {display_addr(bind, port)}: {exc}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"❌ FATAL: port {port} is already in use on {host}; choose another with "
                               f"--port (or [townhall] rest_port)") from None
        raise StartupError(f"❌ FATAL: could not listen on {display_addr(bind, port)}: {exc.strerror}") from None
    return sock


def connection_limits(town: Town) -> ConnectionLimits:
    cfg = town.config.townhall
    return ConnectionLimits(
        max_connections=cfg.max_connections,
        max_header_bytes=cfg.max_header_bytes,
        header_timeout_secs=cfg.header_timeout_secs,
        body_timeout_secs=cfg.body_timeout_secs,
    )


@contextmanager
def _reload_on_hangup(town: Town, plugins: LoadedPlugins) -> Iterator[None]:
    previous = signal.signal(signal.SIGHUP, hangup_handler(town, plugins))
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextmanager
def _graceful_signals() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would kill us before the
    private Redis is stopped; with these handlers in place the re-raised signal is a no-op and the
    process finishes cleanly with status 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
