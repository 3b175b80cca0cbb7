"""Issue 14 item 2 against a real townhall process: behind a trusted proxy that appends its own
``X-Forwarded-For`` line, the line the client wrote does not pick the rate-limit bucket."""

from __future__ import annotations

import uuid
from typing import Callable

import httpx

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]

TIGHT = ('[townhall.rate_limit]\nburst_size = 3\nrequests_per_minute = 6\nmutating_requests_per_minute = 6\n'
         'trusted_proxies = ["127.0.0.1"]\n')


def forwarded(*lines: str) -> list[tuple[str, str]]:
    """Header lines as a proxy passes them on: one ``X-Forwarded-For`` line each, in order."""
    return [("X-Forwarded-For", line) for line in lines] + [("X-API-Key", uuid.uuid4().hex)]


def test_a_client_written_line_does_not_pick_the_bucket(serve: Serve) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(api_keys_toml([key]) + TIGHT)
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        # HAProxy `option forwardfor`: the client's own line first, the proxy's line (the real peer) last.
        statuses = [client.get("/v1/status", headers=forwarded(f"198.51.100.{n}", "203.0.113.7")).status_code
                    for n in range(6)]
        assert statuses == [401] * 3 + [429] * 3
        # A trusted hop inside the lines is walked through, whichever line it is on.
        walked = client.get("/v1/status", headers=forwarded("198.51.100.50", "203.0.113.7", "127.0.0.1"))
        assert walked.status_code == 429
        # Another client behind the same proxy keeps its own budget.
        other = [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.8"), *key.bearer().items()]
        assert client.get("/v1/status", headers=other).status_code == 200
