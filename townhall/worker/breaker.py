"""The circuit breaker of ``[agent] failure_breaker``: an agent whose runs keep failing the same way is
broken.

A failed run counts only when it ends exactly as the previous failed run did (exit status and output):
a CLI that cannot work (bad credentials, a broken install) fails every task alike, whereas a task that
fails on its own merits fails with its own output — such tasks are left to ``max_attempts`` and do not
stop a healthy agent.
"""

from __future__ import annotations

from collections import deque

from townhall.config import FailureBreakerConfig


class FailureBreaker:
    """Trips when ``failures`` failed runs in a row, all ending alike, happened within ``within_secs``
    (times from the caller's monotonic clock); ``failures = 0`` never trips."""

    def __init__(self, config: FailureBreakerConfig) -> None:
        self.failures = config.failures
        self.within = float(config.within_secs)
        self._times: deque[float] = deque()
        self._last = ""

    def failed(self, now: float, ending: str) -> bool:
        """Count a failed run that ended as ``ending`` (exit status and output); ``True`` if the
        breaker trips with it."""
        if self.failures <= 0:
            return False
        if ending != self._last:
            self._times.clear()
            self._last = ending
        self._times.append(now)
        while self._times and now - self._times[0] > self.within:
            self._times.popleft()
        return len(self._times) >= self.failures

    def succeeded(self) -> None:
        self._times.clear()
        self._last = ""

    def describe(self) -> str:
        return f"{self.failures} runs in a row failed alike within {self.within:g} s"
