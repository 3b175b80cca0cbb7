"""Every ``/v1`` route handler (each declares its scope; the app mounts them under ``/v1``)."""

import townhall.http.domain_problems  # noqa: F401  (registers domain error → status mappings)
from townhall.routes import agents, backlog, messages, missions, recovery, tasks, town

V1_ROUTES: list = [
    *town.ROUTES,
    *agents.ROUTES,
    *tasks.ROUTES,
    *backlog.ROUTES,
    *messages.ROUTES,
    *recovery.ROUTES,
    *missions.ROUTES,
]
