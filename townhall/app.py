"""The Litestar application factory."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig

from townhall.auth import AuthMode
from townhall.config import ConfigError, Town
from townhall.context import AppContext
from townhall.http.api_docs import openapi_config
from townhall.http.audit import attach_audit_file
from townhall.http.dependencies import app_dependencies
from townhall.http.envelope import Envelope
from townhall.http.errors import EXCEPTION_HANDLERS
from townhall.http.guard import unscoped_v1_routes
from townhall.http.ratelimit import RequestRateLimiter, rate_limit_enabled
from townhall.registry import ExporterSpec, PluginRegistry
from townhall.http.openapi import finish_openapi
from townhall.routes.public import PUBLIC_ROUTES
from townhall.routes.v1 import v1_router
from townhall.runtime import Runtime
from townhall.services.upkeep import Upkeep

log = logging.getLogger("townhall")


def enabled_exporters(town: Town, registry: PluginRegistry) -> list[ExporterSpec]:
    """``[townhall.metrics] exporters`` (``None``: every installed exporter); an unknown name raises
    :class:`townhall.registry.UnknownPluginName`."""
    names = town.config.townhall.metrics.exporters
    return [registry.exporters.get(name) for name in (registry.exporters.names() if names is None else names)]


def load_auth_mode(town: Town, registry: PluginRegistry) -> AuthMode:
    spec = registry.auth_modes.get(town.config.townhall.auth.mode)
    return spec.factory(registry.auth_modes.settings(spec, town))


def app_context(runtime: Runtime, auth: AuthMode | None = None) -> AppContext:
    """The HTTP side of ``runtime``: the auth mode (``auth``, if already loaded) and the rate limiter.
    Raises ``UnknownPluginName``/``ConfigError`` for a config that names what is not installed."""
    town = runtime.town
    limits = town.config.townhall.rate_limit
    return AppContext(
        runtime=runtime,
        auth=auth or load_auth_mode(town, runtime.plugins.registry),
        rate_limiter=RequestRateLimiter(limits, runtime.store.limits) if rate_limit_enabled(limits, town.config.townhall.auth.mode)
        else None,
    )


def create_app(runtime: Runtime, auth: AuthMode | None = None) -> Litestar:
    """The app serving ``runtime``'s town; it closes the runtime when its lifespan ends."""
    ctx = app_context(runtime, auth)
    exporters = enabled_exporters(runtime.town, runtime.plugins.registry)
    config = ctx.town.config.townhall

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Auth modes may warm up (e.g. fetch the issuer's keys) and hold clients to close.
        start, close = getattr(ctx.auth, "start", None), getattr(ctx.auth, "aclose", None)
        if start is not None:
            await start()
        try:
            async with Upkeep(runtime.services).running():
                # What startup built lives as long as the process: frozen, the collector no longer
                # walks it in every full collection (pauses of milliseconds that showed in the p99).
                # And a young-generation collection every 10,000 net allocations instead of 700: a
                # request's objects are freed by reference counting long before, so the collector
                # no longer runs about once per request over objects that are about to go anyway
                # (a tenth of a listing's time). Only reference cycles wait longer to be freed.
                gc.freeze()
                gc.set_threshold(10_000, 20, 10)
                yield
        finally:
            if close is not None:
                await close()
            await runtime.aclose()

    envelope = Envelope(ctx, audit=config.audit.enabled)
    if config.audit.enabled and config.audit.file:
        attach_audit_file(ctx.town.root / config.audit.file, config.audit)
    cors = config.cors
    app_config = AppConfig(
        route_handlers=[*PUBLIC_ROUTES, v1_router(ctx)],
        dependencies=app_dependencies(ctx),
        # Content type and the guard (http/guard.py::Gate): the envelope's admission, see there.
        before_request=envelope.admit,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        cors_config=CORSConfig(
            allow_origins=cors.allow_origins,
            allow_methods=cors.allow_methods,  # type: ignore[arg-type]
            allow_headers=cors.allow_headers,
            allow_credentials=cors.allow_credentials,
            expose_headers=["X-Request-ID", "Retry-After", "WWW-Authenticate"],
            max_age=cors.max_age,
        )
        if cors.allow_origins
        else None,
        request_max_body_size=config.max_body_bytes,
        lifespan=[lifespan],
        logging_config=None,
        openapi_config=openapi_config(),
        state=State({"ctx": ctx}),
        plugins=[spec.factory(ctx) for spec in exporters],
    )
    runtime.plugins.pm.hook.townhall_setup_app(app_config=app_config, context=ctx)
    app = Litestar.from_config(app_config)
    envelope.install(app)
    finish_openapi(app)
    unscoped = unscoped_v1_routes(app)
    if unscoped:
        # Fail closed: serving such a route would make it public by omission.
        raise ConfigError("townhall: refusing to serve /v1 routes that declare no scope "
                          f"(opt={{'scope': Scope...}}): {', '.join(unscoped)}")
    unadmitted = envelope.unadmitted_routes(app)
    if unadmitted:
        # Fail closed too: their before_request would run in place of the auth and scope guard.
        raise ConfigError("townhall: refusing to serve routes with a before_request hook of their own "
                          f"(it would replace townhall's guard): {', '.join(unadmitted)}")
    return app

