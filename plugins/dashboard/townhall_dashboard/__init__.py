"""Townhall plugin ``dashboard``: a web page of the town at ``/ui`` (``/`` redirects there).

The town (readiness, queue depth, scaling recommendation, workers), its agents, tasks (cancel and retry
for credentials with ``town.write``), the backlog with an add form, and the live event feed of
``GET /v1/events``. Server-rendered with Jinja; the package's own small script and stylesheet are the
only assets (no CDN, no build step), so it works offline. Under ``api_key``/``oidc`` the page asks for
the key or token once and keeps it in the tab's ``sessionStorage``. See ``docs/dashboard.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall import hookimpl

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

    from townhall.context import AppContext


@hookimpl
def townhall_setup_app(app_config: AppConfig, context: AppContext) -> None:
    # Litestar and Jinja are imported when an app is built, not whenever plugins load: every `tt`
    # command loads them.
    from townhall_dashboard.mount import mount_dashboard

    mount_dashboard(app_config)
