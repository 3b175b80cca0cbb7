"""Townhall plugin ``dashboard``: a web page of the town at ``/ui`` (``/`` redirects there).

The town (readiness, queue depth, scaling recommendation, workers), its agents, tasks (cancel and retry
for credentials with ``town.write``), the backlog with an add form, and the live event feed of
``GET /v1/events``. Server-rendered with Jinja; the package's own small script and stylesheet are the
only assets (no CDN, no build step), so it works offline. Under ``api_key``/``oidc`` the page asks for
the key or token once and keeps it in the tab's ``sessionStorage``. See ``docs/dashboard.md``.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar.config.app import AppConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from townhall import hookimpl
from townhall.config import ConfigError
from townhall.context import AppContext

from townhall_dashboard.routes import BASE, CSP, dashboard_routes

__all__ = ["BASE", "CSP"]


def template_environment() -> Environment:
    # Autoescaping is what makes a task text like "<img src=x onerror=...>" arrive as text.
    return Environment(loader=PackageLoader("townhall_dashboard", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=False)


@hookimpl
def townhall_setup_app(app_config: AppConfig, context: AppContext) -> None:
    if app_config.template_config is not None:
        # Litestar has one template engine per app; sharing it would mix another plugin's templates in.
        raise ConfigError("townhall-dashboard: another plugin already set the app's template engine")
    app_config.template_config = TemplateConfig(
        instance=JinjaTemplateEngine.from_environment(template_environment()))
    app_config.route_handlers.extend(dashboard_routes())
