"""Issue 15 item 4 (the fast parts; the failover under load is tests/reliability/test_sentinel_failover.py):
townhall, ``tt`` and a worker find Redis through ``[redis.sentinel]``; sentinels that do not answer mean
503s and recovery once they do, not a crash; ``wait_replicas`` refuses to acknowledge a write no replica
has (503), and acknowledges it when one does."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support.sentinel import SentinelCluster
from tests.support.workers import executions, fake_town, start_pool_worker, wait_for
from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.towns import write_town

TIMEOUT_MS = 3000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A primary, one replica and three sentinels (not started: a test starts them)."""
    sentinels = SentinelCluster(tmp_path / "sentinel", replicas=1)
    yield sentinels
    sentinels.stop()


def _sentinel_town(root: Path, town_name: str, cluster: SentinelCluster, redis_extra: str = "") -> Path:
    write_town(root, town_name, extra=f"[townhall]\nrequest_timeout_ms = {TIMEOUT_MS}\n")
    with (root / "tinytown.toml").open("a", encoding="utf-8") as f:
        f.write(f"[redis]\n{redis_extra}\n{cluster.toml()}")
    return root


def test_unreachable_sentinels_mean_503s_then_recovery(tmp_path: Path, town_name: str,
                                                       cluster: SentinelCluster) -> None:
    town = _sentinel_town(tmp_path, town_name, cluster)
    proc = TownhallProcess(town).start()
    try:
        for path in ("/ready", "/v1/status"):
            started = time.monotonic()
            down = httpx.get(f"{proc.url}{path}", timeout=30)
            assert down.status_code == 503, down.text
            assert time.monotonic() - started < TIMEOUT_MS / 1000 + 1
        assert httpx.post(f"{proc.url}/v1/backlog", json={"description": "x"}, timeout=30).status_code == 503
        cluster.start()
        wait_for(lambda: httpx.get(f"{proc.url}/ready", timeout=10).status_code == 200, timeout=30)
        created = httpx.post(f"{proc.url}/v1/backlog", json={"description": "after"}, timeout=10)
        assert created.status_code == 201
        task = cluster.client(cluster.primary_port() or 0).hgetall(f"tt:{town_name}:task:{created.json()['task_id']}")
        assert task["description"] == "after"
        assert proc.process is not None and proc.process.poll() is None
    finally:
        assert proc.stop() == 0


def test_tt_and_a_pool_worker_find_the_primary_through_the_sentinels(
        tmp_path: Path, town_name: str, cluster: SentinelCluster) -> None:
    cluster.start()
    fake_town(tmp_path, town_name, None, idle_timeout=0)
    with (tmp_path / "tinytown.toml").open("a", encoding="utf-8") as f:
        f.write(f"[redis]\n{cluster.toml()}")
    added = run_cli("--town", str(tmp_path), "backlog", "add", "through sentinel", "--json", program="tt")
    assert added.returncode == 0, added.stderr
    status = run_cli("--town", str(tmp_path), "status", "--json", program="tt")
    assert json.loads(status.stdout)["redis_url"] == \
        f"sentinel://{','.join(cluster.hosts)}/townhall-primary/0"
    worker = start_pool_worker(tmp_path)
    wait_for(lambda: len(executions(tmp_path)) == 1, timeout=60)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def test_wait_replicas_refuses_a_write_no_replica_has(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url)  # the session's server: no replica
    text = (tmp_path / "tinytown.toml").read_text()
    (tmp_path / "tinytown.toml").write_text(text.replace("[redis]\n", "[redis]\nwait_replicas = 1\nwait_timeout_ms = 200\n"))
    proc = TownhallProcess(tmp_path).start()
    try:
        refused = httpx.post(f"{proc.url}/v1/backlog", json={"description": "unreplicated"}, timeout=10)
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "replica" in refused.json()["detail"]
    finally:
        proc.stop()


def test_wait_replicas_acknowledges_a_write_a_replica_has(tmp_path: Path, town_name: str,
                                                          cluster: SentinelCluster) -> None:
    cluster.start()
    town = _sentinel_town(tmp_path, town_name, cluster, "wait_replicas = 1")
    proc = TownhallProcess(town).start()
    try:
        created = httpx.post(f"{proc.url}/v1/backlog", json={"description": "replicated"}, timeout=10)
        assert created.status_code == 201, created.text
        replica = next(n.port for n in cluster.nodes if n.port != cluster.primary_port())
        key = f"tt:{town_name}:task:{created.json()['task_id']}"
        assert cluster.client(replica).hget(key, "description") == "replicated"  # already there: WAIT said so
    finally:
        proc.stop()
