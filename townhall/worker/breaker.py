"""The circuit breaker of ``[agent] failure_breaker``: an agent whose runs keep failing the same way is
broken.

A failed run counts only when it ends exactly as the previous failed run did (exit status and output):
a CLI that cannot work (bad credentials, a broken install) fails every task alike, whereas a task that
fails on its own merits fails with its own output — such tasks are left to ``max_attempts`` and do not
stop a healthy agent.

A retry of one task fails alike too (the same task, the same output), which tells nothing new about
the CLI once it has proven itself (the agent completed a task before, or a run of this worker
succeeded): then the streak counts each task once, and a bad task retried on the same agent — the
only shared work left, say — is left to ``max_attempts`` instead of stopping a healthy agent (and then,
task by task, every agent it lands on). An agent that never completed anything still trips on such
repeats, so that a broken one cannot spend a task's every attempt by itself.
"""

from __future__ import annotations

from collections import deque

from townhall.config import FailureBreakerConfig


class FailureBreaker:
    """Trips when ``failures`` failed runs in a row, all ending alike, happened within ``within_secs``
    (times from the caller's monotonic clock); ``failures = 0`` never trips."""

    def __init__(self, config: FailureBreakerConfig, *, proven: bool = False) -> None:
        self.failures = config.failures
        self.within = float(config.within_secs)
        self._streak: deque[tuple[float, str]] = deque()  # (when, which work) of the failures in a row
        self._last = ""
        #: The CLI has worked for this agent (it completed a task before, or a run succeeded since).
        self.proven = proven

    def failed(self, now: float, ending: str, work: str) -> bool:
        """Count a failed run of ``work`` (a task or message id) that ended as ``ending`` (exit status
        and output); ``True`` if the breaker trips with it. Once the CLI is :attr:`proven`, another
        failure of work already in the streak (a retry of the task) is not counted again."""
        if self.failures <= 0:
            return False
        if ending != self._last:
            self._streak.clear()
            self._last = ending
        while self._streak and now - self._streak[0][0] > self.within:
            self._streak.popleft()
        if self.proven and any(seen == work for _, seen in self._streak):
            return False
        self._streak.append((now, work))
        return len(self._streak) >= self.failures

    def succeeded(self) -> None:
        self._streak.clear()
        self._last = ""
        self.proven = True

    def describe(self) -> str:
        return f"{self.failures} runs in a row failed alike within {self.within:g} s"
