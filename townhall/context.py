"""What the HTTP app holds for its lifetime: the town's runtime plus the HTTP-only parts (auth, limits)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from litestar.types import Message, Scope

from townhall.auth import AuthMode
from townhall.config import Town
from townhall.http.ratelimit import RequestRateLimiter
from townhall.runtime import Runtime
from townhall.services.town import TownServices

#: Process start, for ``/health`` uptime (reference GAP 16: upstream counted from the first probe).
PROCESS_STARTED = time.monotonic()

#: Called at every HTTP response start (the message with the final status and headers, and the request's
#: scope), router 404s and answers built from errors included. Synchronous, on the request's path: it
#: must be quick and must not raise.
ResponseObserver = Callable[[Message, Scope], None]


@dataclass
class AppContext:
    """The running town (its :class:`Runtime`) and what only the HTTP side needs."""

    runtime: Runtime
    auth: AuthMode
    rate_limiter: RequestRateLimiter | None = None
    #: What a plugin (the metrics exporter) wants to see of every response: see :data:`ResponseObserver`.
    response_observers: list[ResponseObserver] = field(default_factory=list)

    @property
    def town(self) -> Town:
        return self.runtime.town

    @property
    def services(self) -> TownServices:
        return self.runtime.services

    @property
    def uptime_secs(self) -> int:
        return process_uptime_secs()


def process_uptime_secs() -> int:
    return int(time.monotonic() - PROCESS_STARTED)
