"""Exporter ``prometheus``: ``GET /metrics`` in the Prometheus text format (or OpenMetrics on request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.config.app import AppConfig
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from townhall import __version__
from townhall.context import AppContext
from townhall_metrics.http_metrics import ProcessMetrics
from townhall_metrics.snapshot import UNAVAILABLE, MetricsUnavailable, read_town_snapshot
from townhall_metrics.town_collector import TownCollector

PATH = "/metrics"


@dataclass
class MetricsOperation(Operation):
    """``GET /metrics`` in the document: both formats it serves, and the 503 a deployment may choose for an
    unreadable town (``[townhall.metrics] outage_status = 503``)."""

    def __post_init__(self) -> None:
        text = OpenAPIMediaType(schema=Schema(type="string"))  # type: ignore[arg-type]
        ok = self.responses.get("200") if self.responses else None
        if isinstance(ok, OpenAPIResponse):
            ok.content = {**(ok.content or {}), OPENMETRICS: text}
            ok.description = ("The metrics: Prometheus text format, or OpenMetrics when `Accept` asks for "
                              "`application/openmetrics-text`. While the town cannot be read: `tinytown_ready 0`, "
                              "`tinytown_redis_up 0` and the process metrics")
        self.responses = {**(self.responses or {}), "503": OpenAPIResponse(
            description="The town cannot be read and `[townhall.metrics] outage_status = 503` is set (same body)",
            content={CONTENT_TYPE_PLAIN_0_0_4.removesuffix("; charset=utf-8"): text, OPENMETRICS: text})}


class PrometheusExporter:
    """A Litestar init plugin adding ``GET /metrics`` and the HTTP request observers."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.process = ProcessMetrics(__version__)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(self._route())
        self.ctx.response_observers.append(self.process.observe)
        return app_config

    async def scrape(self, accept: str = "") -> Response[bytes]:
        """Town metrics first (reference order), then the process's own. When the town cannot be read,
        every town value is 0 (``tinytown_redis_up`` says whether Redis answered at all), the reason is a
        final comment, and the status is ``[townhall.metrics] outage_status`` (200 by default, so that
        Prometheus stores ``tinytown_ready 0``; 503 as upstream)."""
        error: str | None = None
        try:
            snapshot = await read_town_snapshot(self.ctx.services.store)
        except MetricsUnavailable as exc:
            snapshot, error = msgspec.structs.replace(UNAVAILABLE, redis_up=exc.redis_up), str(exc)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TownCollector(snapshot))
        registry.register(self.process)
        status = 200 if error is None else self.ctx.town.config.townhall.metrics.outage_status
        if wants_openmetrics(accept):
            # OpenMetrics allows no free comments: the failure shows as tinytown_ready 0 and the 503.
            return _response(status, generate_openmetrics(registry), OPENMETRICS)
        body = generate_latest(registry)
        if error is not None:
            detail = error.replace("\r", " ").replace("\n", " ")
            body += f"# tinytown_metrics_error {detail}\n".encode()
        return _response(status, body, CONTENT_TYPE_PLAIN_0_0_4)

    def _route(self) -> Any:
        exporter = self

        @get(PATH, summary="Prometheus metrics of the town and of this process", tags=["probes"],
             media_type=CONTENT_TYPE_PLAIN_0_0_4, operation_class=MetricsOperation)
        async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
            """Town gauges and counters (agents, tasks, missions, readiness), HTTP request counts and
            durations by route and status, process metrics and build info; see docs/metrics.md."""
            return await exporter.scrape(request.headers.get("accept", ""))

        return metrics


def _response(status: int, body: bytes, content_type: str) -> Response[bytes]:
    """The body as ``GET /metrics`` answers it."""
    if content_type.startswith("text/"):  # Litestar appends the charset of text types itself
        content_type = content_type.removesuffix("; charset=utf-8")
    return Response(body, status_code=status, media_type=content_type)


def wants_openmetrics(accept: str) -> bool:
    return any(part.split(";")[0].strip() == "application/openmetrics-text" for part in accept.split(","))
