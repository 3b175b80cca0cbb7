"""``GET /api/scaling``: the public autoscaler signal (reference §9.4)."""

from __future__ import annotations

from litestar import get
from litestar.openapi.datastructures import ResponseSpec

from townhall.http.dependencies import Context
from townhall.routes.common import Resource
from townhall.problems import PROBLEM_JSON, Problem
from townhall.services.scaling import ScalingSignal, scaling_signal


class ScalingController(Resource, path="/api/scaling", tag="probes"):
    @get(
        "/",
        summary="Autoscaler signal: queued and in-flight work, workers, and a scaling recommendation",
        responses={503: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                                     description="Redis unreachable: the queue could not be measured")},
    )
    async def scaling(self, context: Context) -> ScalingSignal:
        """The autoscaler signal (KEDA, Cloud Run): queued and in-flight work, live workers, and a scaling
        recommendation."""
        config = context.town.config
        return await scaling_signal(
            context.services.store,
            context.services.queue,
            town=context.town.name,
            max_agents=config.max_agents,
            idle_timeout_secs=config.agent.idle_timeout_secs,
            stale_after_secs=config.agent.stale_after_secs,
        )
