"""Issue 14 item 13 against a real townhall process: authenticated answers are not cacheable;
repeated credential headers are refused."""

from __future__ import annotations

from typing import Callable

import httpx

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]


def test_authenticated_answers_are_not_stored_and_credentials_come_once(serve: Serve) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(api_keys_toml([key]))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        assert client.get("/v1/status", headers=key.bearer()).headers["cache-control"] == "no-store"
        assert "no-store" not in client.get("/health").headers.get("cache-control", "")
        twice = [("Authorization", f"Bearer {key.key}"), ("Authorization", "Bearer attacker-chosen")]
        for headers in (twice, [("X-API-Key", key.key), ("X-API-Key", key.key)]):
            refused = client.get("/v1/status", headers=headers)
            assert refused.status_code == 400, refused.text
            assert "Duplicate" in refused.json()["detail"]
