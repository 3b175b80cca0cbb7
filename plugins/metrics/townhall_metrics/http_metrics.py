"""Metrics of the townhall server itself, kept in registries private to one app: HTTP requests by
route template, method and status, their durations, process and platform metrics, and build info.

Private registries (not prometheus_client's global ``REGISTRY``) keep two apps in one process — tests,
or an embedding application — from sharing or clashing counters. With several server processes the
request counters and durations are those of all of them (:mod:`townhall_metrics.multiprocess`); the
``process_*`` metrics and ``tinytown_server_process`` are the answering process's.
"""

from __future__ import annotations

import os
from typing import Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric

from townhall.server_env import PROCESSES_ENV
from townhall_metrics.multiprocess import shared_metrics_dir
from townhall_metrics.request_metrics import LocalRequests, SharedRequests


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
        self.shared_dir = shared_metrics_dir()
        self.requests: LocalRequests | SharedRequests = (
            LocalRequests() if self.shared_dir is None else SharedRequests(self.shared_dir))
        #: The response observer (``AppContext.response_observers``): called at every response start,
        #: unmatched routes and responses built from exceptions included, so the status label is the one
        #: the client got. The duration runs from when townhall's envelope saw the request (its first
        #: step, so timeouts and 415s are timed too). The recorder's own method: a call less.
        self.observe = self.requests.observe
        self.local = CollectorRegistry()
        ProcessCollector(registry=self.local)
        PlatformCollector(registry=self.local)

    def collect(self) -> Iterator[Metric]:
        """So a scrape's registry can include everything here after the town metrics: build and
        process identity, the request metrics (of every server process when there are several), then
        this process's own."""
        yield from self.build.collect()
        yield from self.requests.collect()
        yield from self.local.collect()

