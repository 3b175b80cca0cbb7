"""Pool workers (``tt agent-loop`` / ``townhall worker`` without NAME) and automatic liveness: a
SIGKILLed worker is declared lost by townhall's sweep, its work goes where a live worker gets it, and
the scaling signal asks for a replacement (issue 12)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.workers import executions, fake_town, start_pool_worker, start_worker, wait_for
from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess, run_cli


def agents(r: redis.Redis, town: str) -> dict[str, dict[str, str]]:
    keys = TownKeys(town)
    found = {}
    for agent_id in r.smembers(keys.agent_index):
        record = r.hgetall(keys.agent(agent_id))
        if record:
            found[agent_id] = record
    return found


def add_backlog(r: redis.Redis, root: Path, *descriptions: str) -> list[str]:
    ids = []
    for description in descriptions:
        done = run_cli("--town", str(root), "backlog", "add", description, "--json", program="tt")
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["task_id"])
    return ids


def task_state(r: redis.Redis, town: str, task_id: str) -> str:
    return r.hget(TownKeys(town).task(task_id), "state") or ""


def test_pool_workers_register_unique_names_share_work_and_leave_no_records(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=3)
    ids = add_backlog(sync_redis, tmp_path, *(f"job {i} SLEEP=0.3" for i in range(6)))
    one = start_pool_worker(tmp_path, env={"HOSTNAME": "pod-a"})
    two = start_pool_worker(tmp_path, "--pool", "builder", program="townhall", env={"HOSTNAME": ""})
    records = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(agents(sync_redis, town_name)))
    names = sorted(r["name"] for r in records.values())  # type: ignore[union-attr]
    assert names[0].startswith("builder-") and len(names[0]) == len("builder-") + 6
    assert names[1].startswith("worker-pod-a-") and len(names[1]) == len("worker-pod-a-") + 6
    assert sorted(r["pool"] for r in records.values()) == ["builder", "worker"]  # type: ignore[union-attr]
    wait_for(lambda: all(task_state(sync_redis, town_name, t) == "completed" for t in ids), timeout=60)
    done = executions(tmp_path)
    assert sorted(t for t, _ in done) == sorted(ids)
    # Idle timeout: both drain and exit 0, and their records are gone with them.
    assert one.wait(timeout=30) == 0 and two.wait(timeout=30) == 0
    assert agents(sync_redis, town_name) == {}


def test_sigterm_hands_back_a_pool_workers_task_and_removes_its_record(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)
    [task_id] = add_backlog(sync_redis, tmp_path, "long SLEEP=30")
    proc = start_pool_worker(tmp_path)
    wait_for(lambda: task_state(sync_redis, town_name, task_id) == "running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert task_state(sync_redis, town_name, task_id) == "pending"
    assert sync_redis.lrange(TownKeys(town_name).backlog, 0, -1) == [task_id]
    assert agents(sync_redis, town_name) == {}


@pytest.mark.parametrize("prefix", ["bad name", "-x", "supervisor", "p" * 60])
def test_a_pool_prefix_that_is_not_an_agent_name_exits_2_with_the_rule(
        tmp_path: Path, town_name: str, redis_url: str, prefix: str) -> None:
    fake_town(tmp_path, town_name, redis_url)
    done = run_cli("--town", str(tmp_path), "agent-loop", "--pool", prefix, program="tt")
    assert done.returncode == 2
    assert "pool prefix" in done.stderr


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
def test_a_sigkilled_worker_is_declared_lost_and_its_work_goes_to_a_live_worker(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis, streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams, heartbeat=1, visibility=600, stale_after=3)
    townhall = TownhallProcess(tmp_path).start()
    try:
        keys = TownKeys(town_name)
        [shared] = add_backlog(sync_redis, tmp_path, "shared SLEEP=60")
        named = start_worker(tmp_path, "named")
        wait_for(lambda: task_state(sync_redis, town_name, shared) == "running")
        named_id = sync_redis.hget(keys.task(shared), "assigned_to")
        assigned = run_cli("--town", str(tmp_path), "assign", "named", "direct for named", "--json", program="tt")
        assert assigned.returncode == 0, assigned.stderr
        named.kill()
        named.wait(timeout=10)

        # Within stale_after_secs + a sweep period: Stopped with its reason, shared work back in the
        # shared queue, and the scaling signal asks for a worker although no agent is active.
        # The sweep marks the agent Stopped, then puts its work back: wait for both effects.
        def lost_and_rescued() -> bool:
            return sync_redis.hget(keys.agent(named_id), "state") == "stopped" \
                and task_state(sync_redis, town_name, shared) == "pending"  # type: ignore[arg-type]
        wait_for(lost_and_rescued, timeout=15)
        activity = sync_redis.lrange(keys.activity(named_id), 0, -1)  # type: ignore[arg-type]
        assert any("heartbeat lost" in line for line in activity)
        signal_ = httpx.get(f"{townhall.url}/api/scaling", timeout=5).json()
        assert signal_["active_agents"] == 0
        assert signal_["scaling_recommendation"] == "scale_up" and signal_["desired_agents"] >= 1
        # The named agent's direct assignment stays in its own inbox.
        assert sync_redis.llen(keys.inbox(named_id)) == 1  # type: ignore[arg-type]

        # A pool worker now takes the shared task (no manual recover) and finishes it ...
        sync_redis.hset(keys.task(shared), "description", "shared, second try")
        pool = start_pool_worker(tmp_path)
        wait_for(lambda: task_state(sync_redis, town_name, shared) == "completed", timeout=30)
        pool_id = sync_redis.hget(keys.task(shared), "assigned_to")
        assert pool_id != named_id
        # ... and, SIGKILLed while it holds a direct assignment, its record is removed by the sweep and
        # that assignment goes to the shared queue.
        direct = run_cli("--town", str(tmp_path), "assign", pool_id, "pool direct SLEEP=60", "--json",  # type: ignore[arg-type]
                         program="tt")
        assert direct.returncode == 0, direct.stderr
        direct_id = json.loads(direct.stdout)["task_id"]
        wait_for(lambda: task_state(sync_redis, town_name, direct_id) == "running")
        pool.kill()
        pool.wait(timeout=10)
        wait_for(lambda: not sync_redis.exists(keys.agent(pool_id)), timeout=15)  # type: ignore[arg-type]
        assert task_state(sync_redis, town_name, direct_id) == "pending"
        assert direct_id in sync_redis.lrange(keys.backlog, 0, -1)
    finally:
        townhall.stop()
