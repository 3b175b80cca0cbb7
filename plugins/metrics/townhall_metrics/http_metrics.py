"""Metrics of the townhall server itself, kept in registries private to one app: HTTP requests by
route template, method and status, their durations, process and platform metrics, and build info.

Private registries (not prometheus_client's global ``REGISTRY``) keep two apps in one process — tests,
or an embedding application — from sharing or clashing counters. With several server processes the
request counters and durations are those of all of them (:mod:`townhall_metrics.multiprocess`); the
``process_*`` metrics and ``tinytown_server_process`` are the answering process's.
"""

from __future__ import annotations

import time
from typing import Iterator

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from townhall_metrics.multiprocess import shared_metrics_dir

#: Route label of responses that matched no route (404, 405): raw paths would explode cardinality.
UNMATCHED = "<unmatched>"
_STARTED = "townhall_metrics_started"


class BuildInfo:
    def __init__(self, version: str) -> None:
        self.version = version

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("tinytown_build_info", "Townhall build information.", labels=["version"])
        info.add_metric([self.version], 1)
        yield info


class ServerProcess:
    """Which server process answered: with ``[townhall] workers`` > 1, each scrape reaches one of them."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("tinytown_server_process", "The townhall server process that answered "
                                 "this scrape (its pid), and how many serve the port.", labels=["pid"])
        info.add_metric([str(os.getpid())], int(os.environ.get("TOWNHALL_SERVER_PROCESSES", "1")))
        yield info


class ProcessMetrics:
    def __init__(self, version: str) -> None:
        self.build = CollectorRegistry()
        self.build.register(BuildInfo(version))
        self.build.register(ServerProcess())
        self.http = CollectorRegistry()
        self.requests = Counter(
            "tinytown_http_requests_total", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.http,
        )
        self.duration = Histogram(
            "tinytown_http_request_duration_seconds",
            "Time until the response started, by route template and method.",
            ["route", "method"], registry=self.http,
        )
        self.shared_dir = shared_metrics_dir()
        self.local = CollectorRegistry()
        ProcessCollector(registry=self.local)
        PlatformCollector(registry=self.local)

    def collect(self) -> Iterator[Metric]:
        """So a scrape's registry can include everything here after the town metrics: build and
        process identity, the request metrics (of every server process when there are several), then
        this process's own."""
        yield from self.build.collect()
        if self.shared_dir is not None:
            yield from MultiProcessCollector(None, self.shared_dir).collect()
        else:
            yield from self.http.collect()
        yield from self.local.collect()

    async def observe(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: Litestar calls it for every response, unmatched routes and responses
        built from exceptions included, so the status label is the one the client got."""
        if message["type"] != "http.response.start" or scope["type"] != "http":
            return
        state = scope.get("state") or {}
        started = state.get(_STARTED)
        route = (scope.get("path_template") if "route_handler" in scope else None) or UNMATCHED
        method = scope["method"]
        self.requests.labels(route, method, str(message["status"])).inc()
        if started is not None:
            self.duration.labels(route, method).observe(time.perf_counter() - started)


class RequestClock(ASGIMiddleware):
    """Notes when a matched request entered the app, for :meth:`ProcessMetrics.observe`."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[_STARTED] = time.perf_counter()
        await next_app(scope, receive, send)
