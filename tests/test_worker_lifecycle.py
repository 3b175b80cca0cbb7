"""The worker process: idle timeout (reference §11.2 #18–19), running tasks, stop, SIGTERM, prune."""

from __future__ import annotations

import signal
from pathlib import Path

import redis

from tests.support.workers import (agent_hash, assign_task, executions, fake_town, seed_agent, 
                                   start_worker, wait_for)
from townhall.domain import Task, TaskState
from townhall.keys import TownKeys


def test_idle_timeout_exits_0_and_stops(tmp_path: Path, town_name: str, redis_url: str,
                                        sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1)
    agent_id = seed_agent(sync_redis, town_name, "idle-worker")
    proc = start_worker(tmp_path, "idle-worker", agent_id)
    assert proc.wait(timeout=30) == 0
    record = agent_hash(sync_redis, town_name, agent_id)
    assert record["state"] == "stopped"
    activity = sync_redis.lrange(TownKeys(town_name).activity(agent_id), 0, -1)
    assert any("Idle timeout reached" in line for line in activity)


def test_idle_timeout_clears_a_stale_current_task(tmp_path: Path, town_name: str, redis_url: str,
                                                  sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1)
    done = "6a0c1f4e-2b4d-4c1e-9f55-3d2b7e0c9a11"
    sync_redis.hset(TownKeys(town_name).task(done), mapping={"id": done, "description": "old", "state": "completed",
                                                            "created_at": "2026-01-01T00:00:00+00:00",
                                                            "updated_at": "2026-01-01T00:00:00+00:00"})
    agent_id = seed_agent(sync_redis, town_name, "idle-worker", state="idle", current_task=done)
    proc = start_worker(tmp_path, "idle-worker", agent_id)
    assert proc.wait(timeout=30) == 0
    record = agent_hash(sync_redis, town_name, agent_id)
    assert record["state"] == "stopped" and "current_task" not in record


def test_runs_an_assigned_task_and_a_failing_one(tmp_path: Path, town_name: str, redis_url: str,
                                                  sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=2)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    keys = TownKeys(town_name)
    ok, bad = Task.new("write it", state=TaskState.ASSIGNED, assigned_to=agent_id), \
        Task.new("FAIL please", state=TaskState.ASSIGNED, assigned_to=agent_id)
    assign_task(sync_redis, keys, ok, agent_id)
    assign_task(sync_redis, keys, bad, agent_id)
    proc = start_worker(tmp_path, "w1", agent_id)
    assert proc.wait(timeout=30) == 0
    assert sync_redis.hget(keys.task(ok.id), "state") == "completed"
    assert "did " + ok.id in sync_redis.hget(keys.task(ok.id), "result")
    assert sync_redis.hget(keys.task(bad.id), "state") == "failed"
    assert sync_redis.hget(keys.task(bad.id), "result").startswith("exit status 3")
    record = agent_hash(sync_redis, town_name, agent_id)
    assert record["tasks_completed"] == "1" and record["rounds_completed"] == "2"
    assert (tmp_path / ".tt" / "logs" / "w1" / f"{ok.id}.1.log").exists()  # one log per run (issue 11)
    assert sync_redis.llen(keys.processing(agent_id)) == 0
    assert {t for t, _ in executions(tmp_path)} == {ok.id, bad.id}


def test_informational_messages_do_not_run_the_cli_or_keep_it_alive(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis) -> None:
    from townhall.domain import InformationalBody, Message, SUPERVISOR_ID
    from townhall.store.json_codec import encode_message

    fake_town(tmp_path, town_name, redis_url, idle_timeout=2)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    proc = start_worker(tmp_path, "w1", agent_id)
    keys = TownKeys(town_name)
    wait_for(lambda: agent_hash(sync_redis, town_name, agent_id).get("state") == "idle")
    for _ in range(3):  # informational traffic, spread over more than the idle timeout
        sync_redis.rpush(keys.inbox(agent_id), encode_message(Message.new(SUPERVISOR_ID, agent_id,
                                                                          InformationalBody(summary_text="fyi"))))
        wait_for(lambda: sync_redis.llen(keys.inbox(agent_id)) == 0)
        wait_for(lambda: True, timeout=0.8)
    assert proc.wait(timeout=10) == 0
    assert executions(tmp_path) == []
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "stopped"


def test_kill_stops_a_running_task_and_hands_it_back(tmp_path: Path, town_name: str, redis_url: str,
                                                     sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    keys = TownKeys(town_name)
    task = Task.new("SLEEP=30", state=TaskState.ASSIGNED, assigned_to=agent_id)
    assign_task(sync_redis, keys, task, agent_id)
    proc = start_worker(tmp_path, "w1", agent_id)
    wait_for(lambda: sync_redis.hget(keys.task(task.id), "state") == "running")
    sync_redis.set(keys.stop(agent_id), "1")
    sync_redis.hset(keys.agent(agent_id), "state", "stopped")
    assert proc.wait(timeout=20) == 0
    assert sync_redis.hget(keys.task(task.id), "state") == "assigned"
    assert sync_redis.llen(keys.inbox(agent_id)) == 1  # back where it came from
    assert sync_redis.llen(keys.processing(agent_id)) == 0
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "stopped"
    assert not sync_redis.exists(keys.stop(agent_id))


def test_sigterm_hands_back_and_prune_ends_the_worker(tmp_path: Path, town_name: str, redis_url: str,
                                                      sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    task = Task.new("SLEEP=30", state=TaskState.ASSIGNED, assigned_to=agent_id)
    assign_task(sync_redis, keys, task, agent_id)
    proc = start_worker(tmp_path, "w1", agent_id)
    wait_for(lambda: sync_redis.hget(keys.task(task.id), "state") == "running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert sync_redis.hget(keys.task(task.id), "state") == "assigned"
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "stopped"

    # Same name again without --id: the record is reused, not duplicated (GAP 38).
    sync_redis.delete(keys.inbox(agent_id))
    proc = start_worker(tmp_path, "w1")
    wait_for(lambda: agent_hash(sync_redis, town_name, agent_id).get("state") == "idle")
    assert sync_redis.scard(keys.agent_index) == 1
    sync_redis.delete(keys.agent(agent_id))  # pruned under its feet (GAP 26)
    assert proc.wait(timeout=20) == 0

