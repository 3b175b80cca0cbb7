"""Mounting the dashboard on an app: its template engine and routes."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar.config.app import AppConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from townhall.config import ConfigError

from townhall_dashboard.routes import dashboard_routes


def template_environment() -> Environment:
    # Autoescaping is what makes a task text like "<img src=x onerror=...>" arrive as text.
    return Environment(loader=PackageLoader("townhall_dashboard", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=False)


def mount_dashboard(app_config: AppConfig) -> None:
    if app_config.template_config is not None:
        # Litestar has one template engine per app; sharing it would mix another plugin's templates in.
        raise ConfigError("townhall-dashboard: another plugin already set the app's template engine")
    app_config.template_config = TemplateConfig(
        instance=JinjaTemplateEngine.from_environment(template_environment()))
    app_config.route_handlers.extend(dashboard_routes())
