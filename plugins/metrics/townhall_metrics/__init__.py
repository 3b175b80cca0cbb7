"""Townhall plugin ``metrics``: the ``prometheus`` metrics exporter (``GET /metrics``).

Enabled by default once installed; choose exporters with::

    [townhall.metrics]
    exporters = ["prometheus"]

See ``docs/metrics.md`` for every metric.
"""

from __future__ import annotations

# First: it decides how prometheus_client keeps counters, which is fixed when prometheus_client loads.
from townhall_metrics import multiprocess  # noqa: F401  # isort: skip

from typing import Callable

import prometheus_client

from townhall import hookimpl
from townhall.registry import ExporterSpec

from townhall_metrics.exporter import PrometheusExporter
from townhall_metrics.snapshot import MetricsUnavailable, TownSnapshot, read_town_snapshot
from townhall_metrics.town_collector import TownCollector

__all__ = ["MetricsUnavailable", "PrometheusExporter", "TownCollector", "TownSnapshot", "read_town_snapshot"]

# `_created` series would double every counter and histogram in the text format for no use to a scraper.
prometheus_client.disable_created_metrics()


@hookimpl
def townhall_register_metrics_exporters(register: Callable[[ExporterSpec], None]) -> None:
    register(ExporterSpec(name="prometheus", factory=PrometheusExporter,
                          summary="GET /metrics in the Prometheus text format (OpenMetrics on request)"))
