"""Auth end to end over HTTP against a real townhall process: reference §11.1 scenarios 14, 15 and 23
(scopes as routes see them, public probes, mode none), and the rate limits as a client sees them (per key
id, per address for failed credentials, trusted proxies). Scenarios 13, 21 and 22 are about the api_key
mode itself: plugins/auth_apikey/tests/test_auth_apikey_http.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from tests.support.served import serve
from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import read_audit
from townhall_auth_apikey import REFERENCE_PARAMETERS
from townhall_auth_apikey.testing import api_keys_toml, make_key



# --- scenario 14: a principal's scopes, as routes see them ------------------------------------------


def test_14_read_only_key_reads_but_cannot_write_or_manage(town_dir: Path, procs: list[TownhallProcess]) -> None:
    reader = make_key("dashboard", Scope.TOWN_READ)
    admin = make_key("ops", Scope.ADMIN)
    proc = serve(town_dir, procs, api_keys_toml([reader, admin]))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        assert client.get("/v1/status", headers=reader.bearer()).status_code == 200
        write = client.post("/v1/backlog", json={"description": "Test task"}, headers=reader.bearer())
        manage = client.post("/v1/agents", json={"name": "w1"}, headers=reader.bearer())
        assert (write.status_code, manage.status_code) == (403, 403)
        assert write.json()["detail"] == "Insufficient permissions: this route needs scope 'town.write'"
        assert 'scope="agent.manage"' in manage.headers["www-authenticate"]
        # admin implies every scope
        assert client.get("/v1/status", headers=admin.bearer()).status_code == 200
        assert client.post("/v1/backlog", json={"description": "Test task"}, headers=admin.bearer()).status_code == 201
        assert client.post("/v1/agents", json={"name": "w1"}, headers=admin.bearer()).status_code == 201
        backlog = client.get("/v1/backlog", headers=reader.bearer()).json()
    assert [t["description"] for t in backlog["backlog"]] == ["Test task"]  # the denied write left nothing


# --- scenario 15: public probes need no credentials in api_key mode ----------------------------------


def test_15_public_probes_and_metrics_need_no_credentials(town_dir: Path, town_name: str,
                                                          procs: list[TownhallProcess]) -> None:
    # The reference used a bogus hash here; ours refuses one at startup (test_auth_apikey), so: a real one.
    proc = serve(town_dir, procs, api_keys_toml([make_key("only", Scope.ADMIN)]))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        for path in ("/health", "/healthz"):
            response = client.get(path)
            assert response.status_code == 200 and response.json()["status"] == "ok"
        for path in ("/ready", "/readyz"):
            response = client.get(path)
            assert response.status_code == 200
            assert {k: response.json()[k] for k in ("status", "redis", "dispatcher", "town")} == {
                "status": "ready", "redis": "connected", "dispatcher": "idle", "town": town_name}
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "tinytown_up 1" in metrics.text and "tinytown_ready 1" in metrics.text
        assert client.get("/api/scaling").status_code == 200
        for path in ("/v1/status", "/v1/town", "/v1/agents", "/v1/backlog"):
            denied = client.get(path)
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Bearer realm="townhall"'
            assert denied.headers["content-type"].startswith("application/problem+json")
            assert denied.json()["detail"] == "Authentication required"


def test_23_auth_mode_none_allows_all(townhall: TownhallProcess) -> None:
    for path in ("/v1/status", "/v1/agents", "/v1/backlog"):
        assert httpx.get(f"{townhall.url}{path}", timeout=10).status_code == 200


# --- rate limits over HTTP ---------------------------------------------------------------------------

# Slow refill (one token per 10 s): a bucket drained by the test stays drained for the test's length.
TIGHT = "[townhall.rate_limit]\nburst_size = {burst}\nrequests_per_minute = 6\nmutating_requests_per_minute = 6\n"


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["retry-after"]) <= 10
    assert response.json()["status"] == 429


def test_each_key_id_has_its_own_read_and_write_buckets(town_dir: Path, procs: list[TownhallProcess]) -> None:
    first = make_key("first", Scope.TOWN_READ, Scope.TOWN_WRITE)
    second = make_key("second", Scope.TOWN_READ)
    proc = serve(town_dir, procs, api_keys_toml([first, second]) + TIGHT.format(burst=3)
                 + '[townhall.audit]\nfile = "audit.jsonl"\n')
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/v1/status", headers=first.bearer()).status_code == 200
        assert_limited(client.get("/v1/status", headers=first.bearer()))
        # Same address, another key: its own bucket. The key given by X-API-Key is the same principal.
        assert client.get("/v1/status", headers=second.bearer()).status_code == 200
        assert_limited(client.get("/v1/status", headers={"X-API-Key": first.key}))
        # Writes have a bucket of their own.
        for n in range(3):
            assert client.post("/v1/backlog", json={"description": f"t{n}"}, headers=first.bearer()).status_code == 201
        limited = client.post("/v1/backlog", json={"description": "t3"}, headers=first.bearer())
        assert_limited(limited)
        assert len(client.get("/v1/backlog", headers=second.bearer()).json()["backlog"]) == 3
        # Probes are never limited.
        assert all(client.get("/health").status_code == 200 for _ in range(10))
    line = next(r for r in read_audit(town_dir / "audit.jsonl") if r["request_id"] == limited.headers["x-request-id"])
    assert (line["principal"], line["status"], line["outcome"]) == ("first", 429, "limited")


def wrong_key() -> str:
    return uuid.uuid4().hex * 2


def test_failed_credentials_drain_a_per_address_bucket(town_dir: Path, procs: list[TownhallProcess]) -> None:
    """What a key-guessing client meets: 401s, then 429 before any verification. The bucket is per
    client address: a legitimate client *behind the same address* is refused too until it refills
    (the price of not letting guesses through); other addresses are not affected."""
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(town_dir, procs, api_keys_toml([key]) + TIGHT.format(burst=5)
                 + 'trusted_proxies = ["127.0.0.1"]\n')
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        statuses = [client.get("/v1/status", headers={**attacker, "X-API-Key": wrong_key()}).status_code
                    for _ in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        assert_limited(client.get("/v1/status", headers={**attacker, "X-API-Key": wrong_key()}))
        # Same address, right key: limited as well (documented in docs/security.md).
        assert_limited(client.get("/v1/status", headers={**attacker, **key.bearer()}))
        # Another client behind the trusted proxy, and the proxy's own address: unaffected.
        assert client.get("/v1/status", headers={"X-Forwarded-For": "203.0.113.8", **key.bearer()}).status_code == 200
        assert client.get("/v1/status", headers=key.bearer()).status_code == 200
        # The attacker cannot escape by prepending its own X-Forwarded-For hops: the nearest untrusted
        # hop (the one the proxy appended) is the address.
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert_limited(client.get("/v1/status", headers={**spoofed, "X-API-Key": wrong_key()}))
        assert client.get("/health").status_code == 200


def test_untrusted_peer_cannot_pick_its_address_with_x_forwarded_for(town_dir: Path,
                                                                     procs: list[TownhallProcess]) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(town_dir, procs, api_keys_toml([key]) + TIGHT.format(burst=3))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        statuses = [client.get("/v1/status", headers={"X-Forwarded-For": f"192.0.2.{n}",
                                                      "X-API-Key": wrong_key()}).status_code for n in range(5)]
        assert statuses == [401] * 3 + [429] * 2
        assert_limited(client.get("/v1/status", headers={"X-Forwarded-For": "192.0.2.99", **key.bearer()}))


async def test_a_concurrent_flood_of_wrong_keys_leaves_townhall_responsive(
        town_dir: Path, procs: list[TownhallProcess]) -> None:
    # Real Argon2 cost here: the point is that guesses cannot turn into unbounded CPU work.
    key = make_key("ci", Scope.TOWN_READ, parameters=REFERENCE_PARAMETERS)
    proc = serve(town_dir, procs, api_keys_toml([key]) + "[townhall.rate_limit]\nburst_size = 10\n"
                 'requests_per_minute = 60\ntrusted_proxies = ["127.0.0.1"]\n')
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
        assert (await client.get("/v1/status", headers=key.bearer())).status_code == 200  # now cached

        async def guess() -> int:
            headers = {"X-Forwarded-For": "203.0.113.66", "X-API-Key": wrong_key()}
            return (await client.get("/v1/status", headers=headers)).status_code

        flood = [asyncio.ensure_future(guess()) for _ in range(60)]
        # While the flood runs, the right key (from another client) and the probes keep answering.
        during = [(await client.get("/v1/status", headers={"X-Forwarded-For": "203.0.113.67", **key.bearer()})).status_code
                  for _ in range(3)]
        health = (await client.get("/health")).status_code
        statuses = await asyncio.gather(*flood)
    assert during == [200, 200, 200] and health == 200
    # Guesses reach Argon2 only while the address's failure bucket (10) has tokens and a verification
    # slot is free; the rest are refused at once.
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 35, sorted(statuses)


def test_requests_without_credentials_are_limited_per_address(town_dir: Path,
                                                              procs: list[TownhallProcess]) -> None:
    # Each anonymous 401 is audited: without a limit an anonymous flood is an unbounded audit log.
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(town_dir, procs, api_keys_toml([key]) + TIGHT.format(burst=3) + 'trusted_proxies = ["127.0.0.1"]\n')
    anonymous = {"X-Forwarded-For": "203.0.113.20"}
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        statuses = [client.get("/v1/status", headers=anonymous).status_code for _ in range(5)]
        assert statuses == [401] * 3 + [429] * 2
        assert client.get("/v1/status", headers={"X-Forwarded-For": "203.0.113.21", **key.bearer()}).status_code == 200


def test_scope_denials_count_against_the_principals_bucket(town_dir: Path, procs: list[TownhallProcess]) -> None:
    reader = make_key("dashboard", Scope.TOWN_READ)
    proc = serve(town_dir, procs, api_keys_toml([reader]) + TIGHT.format(burst=3)
                 + '[townhall.audit]\nfile = "audit.jsonl"\n')
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        statuses = [client.post("/v1/backlog", json={"description": "x"}, headers=reader.bearer()).status_code
                    for _ in range(6)]
        # Its read bucket is separate and still full.
        assert client.get("/v1/status", headers=reader.bearer()).status_code == 200
    assert statuses == [403] * 3 + [429] * 3
    outcomes = [line["outcome"] for line in read_audit(town_dir / "audit.jsonl") if line["path"] == "/v1/backlog"]
    assert outcomes == ["denied"] * 3 + ["limited"] * 3
