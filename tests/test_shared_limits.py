"""Rate limits shared by every townhall process of a town (issue 15, item 2): two real townhall
processes on one Redis spend one budget, failed logins included; the buckets are Redis keys with a TTL;
with Redis gone, limited routes answer 503 and the probes still answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from townhall.auth import Scope
from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import append_config, write_town
from townhall_auth_apikey.testing import api_keys_toml, make_key

TIGHT = ("[townhall.rate_limit]\nenabled = true\nburst_size = {burst}\nrequests_per_minute = 6\n"
         "mutating_requests_per_minute = 6\n")



def two_townhalls(town_dir: Path, procs: list[TownhallProcess], config: str) -> tuple[TownhallProcess, TownhallProcess]:
    append_config(town_dir, config)
    pair = [TownhallProcess(town_dir).start(wait=False), TownhallProcess(town_dir).start(wait=False)]
    procs += pair
    for proc in pair:
        proc.wait_healthy()
    return pair[0], pair[1]


def test_two_processes_spend_one_budget(town_dir: Path, town_name: str, procs: list[TownhallProcess],
                                        sync_redis: redis.Redis) -> None:
    a, b = two_townhalls(town_dir, procs, TIGHT.format(burst=4))
    statuses = [httpx.get(f"{proc.url}/v1/status", timeout=10).status_code for proc in (a, b) * 4]
    # Each process alone would have let 4 through, so 8 in all; together they let 4 through.
    assert statuses == [200] * 4 + [429] * 4
    limited = httpx.get(f"{b.url}/v1/status", timeout=10)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Writes have their own shared bucket.
    assert httpx.post(f"{a.url}/v1/backlog", json={"description": "x"}, timeout=10).status_code == 201
    # The bucket is a key with a TTL no longer than the time it takes to fill up again (4 tokens at
    # 6/min: 40 s), so buckets never accumulate.
    key = TownKeys(town_name).rate_bucket("reads", "ip:127.0.0.1")
    assert 0 < sync_redis.pttl(key) <= 41_000
    # Probes are never limited by the shared buckets (nor do they need Redis).
    assert httpx.get(f"{a.url}/health", timeout=10).status_code == 200


def test_failed_logins_count_across_processes(town_dir: Path, procs: list[TownhallProcess]) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    a, b = two_townhalls(town_dir, procs, api_keys_toml([key]) + TIGHT.format(burst=4))
    bad = {"X-API-Key": "0" * 64}
    statuses = [httpx.get(f"{proc.url}/v1/status", headers=bad, timeout=10).status_code for proc in (a, b) * 3]
    # Four guesses in all, whichever process they reach; then both refuse before verifying.
    assert statuses == [401] * 4 + [429] * 2
    assert httpx.get(f"{a.url}/v1/status", headers=bad, timeout=10).status_code == 429


def test_redis_down_limited_routes_answer_503_and_probes_answer(tmp_path: Path, town_name: str) -> None:
    server = RedisServer(tmp_path / "redis-own")
    server.directory.mkdir()
    server.start()
    town = tmp_path / "town"
    town.mkdir()
    write_town(town, town_name, redis_url=server.url, extra=TIGHT.format(burst=50))
    proc = TownhallProcess(town).start()
    try:
        assert httpx.get(f"{proc.url}/v1/status", timeout=10).status_code == 200
        server.kill()
        down = httpx.get(f"{proc.url}/v1/status", timeout=10)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"]
        assert httpx.get(f"{proc.url}/health", timeout=10).status_code == 200
        server.start()
        assert httpx.get(f"{proc.url}/v1/status", timeout=10).status_code == 200
    finally:
        proc.stop()
        server.stop()
