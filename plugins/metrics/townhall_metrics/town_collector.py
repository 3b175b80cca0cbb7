"""The town metrics of reference §9.3, in its order, with its names, HELP texts and types."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from townhall_metrics.snapshot import TownSnapshot


class TownCollector:
    """A prometheus_client collector for one scrape's :class:`TownSnapshot`."""

    def __init__(self, snapshot: TownSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily("tinytown_up", "Whether the townhall process is running.", value=1)
        yield GaugeMetricFamily("tinytown_ready", "Whether townhall can reach its Redis-backed town state.",
                                value=1 if s.ready else 0)
        yield self._agents("tinytown_agents_total", "Number of registered agents by state.")
        yield GaugeMetricFamily("tinytown_tasks_pending", "Number of queued tasks across backlog and agent inboxes.",
                                value=s.tasks_pending)
        yield CounterMetricFamily("tinytown_tasks_completed_total", "Total completed tasks persisted in town state.",
                                  value=s.completed_total)
        yield GaugeMetricFamily("tinytown_missions_active", "Number of active missions.", value=s.missions_active)
        # Upstream prints exactly six decimals; rounding keeps the sample as short as that.
        yield GaugeMetricFamily("tinytown_redis_latency_seconds", "Redis round-trip latency for this scrape.",
                                value=round(s.redis_latency_seconds, 6))
        yield GaugeMetricFamily("tinytown_backlog_tasks", "Tasks currently in the global backlog.", value=s.backlog)
        yield GaugeMetricFamily("tinytown_tasks_assigned_pending", "Pending assigned tasks across all agents.",
                                value=s.assigned_pending)
        yield GaugeMetricFamily("tinytown_urgent_messages", "Urgent inbox messages across all agents.",
                                value=s.urgent_messages)
        # Ours, after the reference's: whether Redis answered, and the agents gauge named as a gauge
        # should be (promtool flags a gauge ending in _total; the reference name stays for old dashboards).
        yield GaugeMetricFamily("tinytown_redis_up", "Whether Redis answered this scrape's PING.",
                                value=1 if s.redis_up else 0)
        yield self._agents("tinytown_agents", "Number of registered agents by state (tinytown_agents_total, "
                           "named as a gauge).")

    def _agents(self, name: str, documentation: str) -> GaugeMetricFamily:
        agents = GaugeMetricFamily(name, documentation, labels=["state"])
        for state, count in self.snapshot.agents_by_state.items():
            agents.add_metric([state], count)
        return agents
