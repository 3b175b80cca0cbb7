"""The two request metrics (``tinytown_http_requests_total``, ``tinytown_http_request_duration_seconds``),
recorded one of two ways by where they must be read.

* One server process (:class:`LocalRequests`): counts in plain dicts, read as they are by the scrape
  (a collector of its own). A response costs two dict updates; prometheus_client's ``Counter`` and
  ``Histogram`` take a lock per value and a Python loop over the buckets, a fifth of ``/health``'s time.
  Nothing is cached: a scrape reads the counts of every response started before it.
* Several server processes (:class:`SharedRequests`): prometheus_client's multiprocess mode, whose values
  live in files every process can read (:mod:`townhall_metrics.multiprocess`), so a scrape answered by
  any process counts every process's requests.

Both give the same families, labels and buckets (prometheus_client's default buckets).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from litestar.types import Message, Scope

from townhall.http.envelope import RECEIVED_AT, received_at

REQUESTS = ("tinytown_http_requests_total", "HTTP requests by route template, method and status.")
DURATION = ("tinytown_http_request_duration_seconds", "Time until the response started, by route template and method.")
#: Upper bounds of the duration buckets (seconds), the last one +Inf.
BOUNDS: tuple[float, ...] = Histogram.DEFAULT_BUCKETS
#: Route label of responses that matched no route (404, 405): raw paths would explode cardinality.
UNMATCHED = "<unmatched>"


def response_labels(message: Message, scope: Scope) -> tuple[str, str, int, float | None]:
    """A response start's route template, method, status and seconds since the envelope saw the
    request (``None`` outside the envelope)."""
    route = (scope.get("path_template") if "route_handler" in scope else None) or UNMATCHED
    started = received_at(scope)
    return route, scope["method"], message["status"], None if started is None else time.perf_counter() - started


class LocalRequests:
    """The request metrics of this process alone, in one dict (see the module)."""

    def __init__(self) -> None:
        # Per (route, method, status): the count of each duration bucket (not cumulative), then the sum
        # of the durations. A response falls in one bucket, so the buckets also count the requests.
        self._counts: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, message: Message, scope: Scope) -> None:
        """The response observer (see ``ProcessMetrics``): one dict read and two list updates.
        :func:`response_labels` is written out here: this runs on every response, and a call less is a
        visible share of a probe's time."""
        route = (scope.get("path_template") if "route_handler" in scope else None) or UNMATCHED
        key = (route, scope["method"], message["status"])
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0.0] * (len(BOUNDS) + 1)
        # The envelope, which calls the observers, noted the arrival in every request's state.
        seconds = time.perf_counter() - scope["state"][RECEIVED_AT]
        # A bucket holds what is at most its bound: the first bound not below the duration.
        counts[bisect_left(BOUNDS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS[0].removesuffix("_total"), REQUESTS[1],
                                       labels=["route", "method", "status"])
        durations: dict[tuple[str, str], list[float]] = {}
        for (route, method, status), counts in list(self._counts.items()):
            requests.add_metric([route, method, str(status)], sum(counts[:-1]))
            summed = durations.setdefault((route, method), [0.0] * len(counts))
            for i, value in enumerate(counts):
                summed[i] += value
        yield requests
        duration = HistogramMetricFamily(*DURATION, labels=["route", "method"])
        for (route, method), values in durations.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip(BOUNDS, values):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            duration.add_metric([route, method], buckets, values[-1])
        yield duration


class SharedRequests:
    """The request metrics of every server process, in prometheus_client's multiprocess files."""

    def __init__(self, shared_dir: str) -> None:
        self.shared_dir = shared_dir
        registry = CollectorRegistry()  # a home for the metrics' values; the scrape reads the files
        self._requests = Counter(*REQUESTS, ["route", "method", "status"], registry=registry)
        self._duration = Histogram(*DURATION, ["route", "method"], registry=registry)
        # prometheus_client hands out the same child per label values; keeping it saves the label
        # checks and the lock of ``labels()`` on every response (the keys are bounded by the routes).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def observe(self, message: Message, scope: Scope) -> None:
        """The response observer (see ``ProcessMetrics``)."""
        self.record(*response_labels(message, scope))

    def record(self, route: str, method: str, status: int, seconds: float | None) -> None:
        count = self._counters.get((route, method, status))
        if count is None:
            count = self._counters[(route, method, status)] = self._requests.labels(route, method, str(status))
        count.inc()
        if seconds is not None:
            timer = self._timers.get((route, method))
            if timer is None:
                timer = self._timers[(route, method)] = self._duration.labels(route, method)
            timer.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        yield from MultiProcessCollector(None, self.shared_dir).collect()

