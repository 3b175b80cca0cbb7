"""The circuit breaker of ``[agent] failure_breaker``: an agent whose runs keep failing is broken."""

from __future__ import annotations

from collections import deque

from townhall.config import FailureBreakerConfig


class FailureBreaker:
    """Trips when ``failures`` failed runs happened within ``within_secs`` (times from the caller's
    monotonic clock); ``failures = 0`` never trips."""

    def __init__(self, config: FailureBreakerConfig) -> None:
        self.failures = config.failures
        self.within = float(config.within_secs)
        self._times: deque[float] = deque()

    def failed(self, now: float) -> bool:
        """Count a failed run; ``True`` if the breaker trips with it."""
        if self.failures <= 0:
            return False
        self._times.append(now)
        while self._times and now - self._times[0] > self.within:
            self._times.popleft()
        return len(self._times) >= self.failures

    def succeeded(self) -> None:
        self._times.clear()

    def describe(self) -> str:
        return f"{self.failures} failed runs within {self.within:g} s"
