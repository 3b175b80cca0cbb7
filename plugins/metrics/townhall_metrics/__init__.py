"""Townhall plugin ``metrics``: the ``prometheus`` metrics exporter (``GET /metrics``).

Enabled by default once installed; choose exporters with::

    [townhall.metrics]
    exporters = ["prometheus"]

See ``docs/metrics.md`` for every metric.
"""

from __future__ import annotations

# First: it decides how prometheus_client keeps counters, which is fixed when prometheus_client loads.
from townhall_metrics import multiprocess  # noqa: F401  # isort: skip

from typing import TYPE_CHECKING, Callable

import prometheus_client

from townhall import hookimpl
from townhall.registry import ExporterSpec

if TYPE_CHECKING:
    from townhall.context import AppContext

    from townhall_metrics.exporter import PrometheusExporter

# `_created` series would double every counter and histogram in the text format for no use to a scraper.
prometheus_client.disable_created_metrics()


@hookimpl
def townhall_register_metrics_exporters(register: Callable[[ExporterSpec], None]) -> None:
    register(ExporterSpec(name="prometheus", factory=prometheus_exporter,
                          summary="GET /metrics in the Prometheus text format (OpenMetrics on request)"))


def prometheus_exporter(ctx: AppContext) -> PrometheusExporter:
    # Litestar is imported when an app is built, not whenever plugins load: every `tt` command loads them.
    from townhall_metrics.exporter import PrometheusExporter

    return PrometheusExporter(ctx)
