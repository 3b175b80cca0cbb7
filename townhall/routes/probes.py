"""Public probes: ``/health`` (process alive) and ``/ready`` (Redis reachable, dispatcher status)."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from townhall import __version__
from townhall.context import process_uptime_secs
from townhall.http.dependencies import Context
from townhall.routes.common import Resource
from townhall.services.readiness import Readiness, check_readiness


class Health(msgspec.Struct):
    status: str
    uptime_secs: int
    version: str


class Ready(msgspec.Struct, omit_defaults=True):
    status: str
    redis: str
    dispatcher: str
    town: str
    redis_latency_ms: float | None = None
    detail: str | None = None


class ProbeController(Resource, path="/", tag="probes"):
    @get(["/health", "/healthz"], summary="Liveness", sync_to_thread=False)
    def health(self) -> Health:
        """Liveness: the process answers. Uptime since the process started, and the version."""
        # Nothing injected: a liveness probe needs no town, and each dependency costs a resolution.
        return Health(status="ok", uptime_secs=process_uptime_secs(), version=__version__)

    @get(
        ["/ready", "/readyz"],
        summary="Readiness: Redis reachable (503 otherwise) and the mission dispatcher's status",
        responses={503: ResponseSpec(data_container=Ready, description="Redis unreachable (same body, not_ready)",
                                     generate_examples=False)},
    )
    async def ready(self, context: Context) -> Response[Ready]:
        """Readiness: 200 when Redis answers, 503 (same body, `not_ready`) when it does not; also the mission
        dispatcher's status."""
        result: Readiness = await check_readiness(context.services.store)
        body = Ready(
            status="ready" if result.ok else "not_ready",
            redis="connected" if result.ok else "disconnected",
            dispatcher=result.dispatcher,
            town=context.town.name,
            redis_latency_ms=result.latency_ms,
            detail=result.detail,
        )
        return Response(body, status_code=200 if result.ok else 503)
