"""Issue 14 item 11 against a real townhall process: public routes have a bucket per address of their
own, and ``[townhall.metrics] require_scope`` puts ``/metrics`` behind a scope."""

from __future__ import annotations

from typing import Callable

import httpx
import pytest

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]

PUBLIC = "[townhall.rate_limit]\npublic_burst_size = 3\npublic_requests_per_minute = 6\n"


@pytest.mark.parametrize("path", ["/health", "/ready", "/api/scaling", "/metrics"])
def test_a_flood_of_public_requests_is_limited_per_address(serve: Serve, path: str) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(api_keys_toml([key]) + PUBLIC)
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        statuses = [client.get(path).status_code for _ in range(5)]
        assert statuses[3:] == [429, 429], statuses
        limited = client.get(path)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # The public bucket is its own: the caller's /v1 budget is untouched.
        assert client.get("/v1/status", headers=key.bearer()).status_code == 200


def test_metrics_can_require_a_scope(serve: Serve) -> None:
    reader, writer = make_key("dashboard", Scope.TOWN_READ), make_key("ci", Scope.TOWN_WRITE)
    proc = serve(api_keys_toml([reader, writer]) + '[townhall.metrics]\nrequire_scope = "town.read"\n')
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=writer.bearer()).status_code == 403
        scraped = client.get("/metrics", headers=reader.bearer())
        assert scraped.status_code == 200 and "tinytown_" in scraped.text
        assert client.get("/health").status_code == 200  # probes stay public
