"""The Litestar application factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pluggy
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from townhall import __version__
from townhall.config import Town
from townhall.context import AppContext, make_redis_client
from townhall.http.envelope import RequestEnvelope
from townhall.http.guard import authorize
from townhall.auth import AuthMode
from townhall.plugins import PluginRegistry, collect_registry, make_plugin_manager
from townhall.problems import add_request_id_header, handle_exception
from townhall.redis_endpoint import RedisEndpoint, configured_endpoint
from townhall.routes import probes

log = logging.getLogger("townhall")

SECURITY = [{"bearer": []}, {"apiKey": []}]


def build_context(
    town: Town,
    endpoint: RedisEndpoint | None = None,
    pm: pluggy.PluginManager | None = None,
    auth: AuthMode | None = None,
) -> AppContext:
    """Everything the app needs, resolved from config; raises ``UnknownPluginName``/``ConfigError``."""
    pm = pm or make_plugin_manager()
    registry = collect_registry(pm)
    endpoint = endpoint or configured_endpoint(town)
    return AppContext(
        town=town,
        endpoint=endpoint,
        redis=make_redis_client(endpoint.url, town.config.townhall.request_timeout_ms),
        pm=pm,
        registry=registry,
        auth=auth or load_auth_mode(town, registry),
    )


def load_auth_mode(town: Town, registry: PluginRegistry) -> AuthMode:
    return registry.auth_modes.get(town.config.townhall.auth.mode).factory(town.config)


def create_app(ctx: AppContext) -> Litestar:
    config = ctx.town.config.townhall

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.redis.aclose()

    v1 = Router("/v1", route_handlers=[], security=SECURITY)
    app_config = AppConfig(
        route_handlers=[probes.health, probes.ready, v1],
        guards=[authorize],
        middleware=[RequestEnvelope(config.request_timeout_ms)],
        exception_handlers={Exception: handle_exception},
        before_send=[add_request_id_header],
        request_max_body_size=config.max_body_bytes,
        lifespan=[lifespan],
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="Townhall",
            version=__version__,
            description="REST control plane of a Tinytown town.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), YamlRenderPlugin()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer",
                                             description="API key or OIDC access token"),
                    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                }
            ),
        ),
        state=State({"ctx": ctx}),
    )
    ctx.pm.hook.townhall_setup_app(app_config=app_config, context=ctx)
    return Litestar.from_config(app_config)

