"""``GET /api/scaling``: the public autoscaler signal (reference §9.4)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec

from townhall.context import AppContext
from townhall.problems import PROBLEM_JSON, Problem, register_domain_error
from townhall.services.scaling import ScalingSignal, ScalingUnavailable, scaling_signal

# An unmeasurable queue is a transient outage, not a server bug: tell the scaler to retry.
register_domain_error(ScalingUnavailable, 503, extra=lambda _exc: {"headers": {"Retry-After": "1"}})


@get(
    "/api/scaling",
    summary="Autoscaler signal: queued and in-flight work, workers, and a scaling recommendation",
    tags=["probes"],
    responses={503: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                                 description="Redis unreachable: the queue could not be measured")},
)
async def scaling(request: Request[Any, Any, Any]) -> ScalingSignal:
    ctx: AppContext = request.app.state.ctx
    config = ctx.town.config
    return await scaling_signal(
        ctx.store,
        ctx.services.queue,
        town=ctx.town.name,
        max_agents=config.max_agents,
        idle_timeout_secs=config.agent.idle_timeout_secs,
    )
