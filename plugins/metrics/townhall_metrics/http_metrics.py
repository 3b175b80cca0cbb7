"""Metrics of the townhall server itself, kept in registries private to one app: HTTP requests by
route template, method and status, their durations, process and platform metrics, and build info.

Private registries (not prometheus_client's global ``REGISTRY``) keep two apps in one process — tests,
or an embedding application — from sharing or clashing counters. With several server processes the
request counters and durations are those of all of them (:mod:`townhall_metrics.multiprocess`); the
``process_*`` metrics and ``tinytown_server_process`` are the answering process's.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

from litestar.types import Message, Scope
from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from townhall.http.envelope import received_at
from townhall.server_env import PROCESSES_ENV
from townhall_metrics.multiprocess import shared_metrics_dir

#: Route label of responses that matched no route (404, 405): raw paths would explode cardinality.
UNMATCHED = "<unmatched>"


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
        info.add_metric([str(os.getpid())], int(os.environ.get(PROCESSES_ENV, "1")))
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
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}
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
        built from exceptions included, so the status label is the one the client got. The duration
        runs from when townhall's envelope saw the request (its first step, so timeouts and 415s are
        timed too)."""
        if message["type"] != "http.response.start" or scope["type"] != "http":
            return
        route = (scope.get("path_template") if "route_handler" in scope else None) or UNMATCHED
        method = scope["method"]
        status = message["status"]
        # prometheus_client hands out the same child per label values; keeping it saves the label
        # checks and the lock of ``labels()`` on every response (the set of keys is bounded by the
        # routes, as the metric's own children are).
        count = self._counters.get((route, method, status))
        if count is None:
            count = self._counters[(route, method, status)] = self.requests.labels(route, method, str(status))
        count.inc()
        started = received_at(scope)
        if started is not None:
            timer = self._timers.get((route, method))
            if timer is None:
                timer = self._timers[(route, method)] = self.duration.labels(route, method)
            timer.observe(time.perf_counter() - started)
