"""A town written exactly as the original ``tt`` writes it is served correctly by every read route;
a Redis outage gives 503 problem details and the API works again when Redis is back; status and
pending work stay correct (and cheap) with 1,000 agents and 100,000 finished tasks."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import redis

from townhall.domain import SUPERVISOR_ID
from townhall.testing.inprocess import app_client
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town

AGENT = "3b2a9c1e-7d4f-4a8b-9c0d-1e2f3a4b5c6d"
TASK = "9d4e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"
BACKLOG_TASK = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MISSION = "6f1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
MSG = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"


def seed_upstream_town(r: redis.Redis, town: str) -> None:
    p = f"tt:{town}:"
    r.hset(p + f"agent:{AGENT}", mapping={
        "id": AGENT, "name": "backend-1", "nickname": "Piper", "role_id": "worker", "spawn_mode": "fresh",
        "agent_type": "worker", "state": "working", "cli": "claude", "current_task": TASK,
        "created_at": "2026-04-04T18:00:00.123456789+00:00", "last_heartbeat": "2026-04-04T18:05:00.5+00:00",
        "last_active_at": "2026-04-04T18:04:00+00:00", "tasks_completed": "3", "rounds_completed": "7",
    })
    r.hset(p + f"task:{TASK}", mapping={
        "id": TASK, "description": "Build the API", "state": "in_flight", "assigned_to": AGENT,
        "created_at": "2026-04-04T18:00:01.000000001+00:00", "updated_at": "2026-04-04T18:01:00+00:00",
        "started_at": "2026-04-04T18:01:00+00:00", "tags": '["backend","api"]',
    })
    r.hset(p + f"task:{BACKLOG_TASK}", mapping={
        "id": BACKLOG_TASK, "description": "Write docs", "state": "pending",
        "created_at": "2026-04-04T18:00:02+00:00", "updated_at": "2026-04-04T18:00:02+00:00", "tags": '["docs"]',
    })
    r.rpush(p + "backlog", BACKLOG_TASK)
    r.rpush(p + f"inbox:{AGENT}", json.dumps({
        "id": MSG, "from": SUPERVISOR_ID, "to": AGENT, "type": "task_assign", "task_id": TASK,
        "priority": "normal", "created_at": "2026-04-04T18:00:00.123456789Z", "correlation_id": None,
    }))
    r.lpush(p + f"urgent:{AGENT}", json.dumps({
        "id": str(uuid.uuid4()), "from": SUPERVISOR_ID, "to": AGENT, "type": "confirmation",
        "ack_type": {"type": "rejected", "reason": "missing tests"}, "priority": "normal",
        "created_at": "2026-04-04T18:00:00Z", "correlation_id": None,
    }))
    r.lpush(p + f"activity:{AGENT}", "Round 7: ✅ completed")
    r.set(p + f"mission:{MISSION}", json.dumps({
        "id": MISSION, "objective_refs": [{"type": "doc", "path": "docs/plan.md"}], "state": "running",
        "policy": {"max_parallel_items": 2, "reviewer_required": True, "auto_merge": False, "watch_interval_secs": 180},
        "created_at": "2026-04-04T18:00:00Z", "updated_at": "2026-04-04T18:00:00Z", "next_wake_at": None,
        "blocked_reason": None, "dispatcher_last_tick_at": "2026-04-04T18:00:30Z",
        "dispatcher_help_request_attempts": 0, "work_items_done": 4,
    }))
    r.sadd(p + "mission:active", MISSION)


def test_upstream_written_town_reads_correctly(tmp_path: Path, town_name: str, redis_url: str,
                                              sync_redis: redis.Redis) -> None:
    seed_upstream_town(sync_redis, town_name)
    write_town(tmp_path, town_name, redis_url=redis_url)
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as api:
            agents = api.get("/v1/agents").json()
            assert agents == {"count": 1, "agents": [{
                "id": AGENT, "name": "backend-1", "nickname": "Piper", "role_id": "worker", "parent_agent_id": None,
                "spawn_mode": "fresh", "cli": "claude", "state": "Working", "current_scope": "Build the API"}]}
            status = api.get("/v1/status?deep=true").json()
            a = status["agents"][0]
            assert (a["rounds_completed"], a["tasks_completed"], a["inbox_len"], a["urgent_len"]) == (7, 3, 1, 1)
            assert a["recent_activity"] == ["Round 7: ✅ completed"]
            assert a["current_task"]["state"] == "running" and a["current_task"]["tags"] == ["backend", "api"]
            assert api.get("/v1/backlog").json() == {
                "count": 1, "backlog": [{"task_id": BACKLOG_TASK, "description": "Write docs", "tags": ["docs"]}]}
            # Upstream lists every task_assign whose record exists; we also require it to be unfinished.
            pending = api.get("/v1/tasks/pending").json()
            assert pending["tasks"] == [{"task_id": TASK, "description": "Build the API", "agent_id": AGENT,
                                         "agent_name": "backend-1", "source": "task"}]
            inbox = api.get("/v1/agents/piper/inbox").json()
            assert inbox["total"] == 1 and inbox["urgent"] == 1
            assert inbox["messages"] == [{"id": MSG, "from": SUPERVISOR_ID, "type": "task_assign",
                                          "summary": f"task assignment {TASK}"}]
            task = api.get(f"/v1/tasks/{TASK}").json()
            assert task["state"] == "running" and task["created_at"].startswith("2026-04-04T18:00:01")
            missions = api.get("/v1/missions").json()
            assert missions["count"] == 1 and missions["missions"][0]["state"] == "running"
            assert missions["missions"][0]["active"] is True
            detail = api.get(f"/v1/missions/{MISSION}").json()
            assert detail["mission"]["work_items_done"] == 4
            assert api.get(f"/v1/agents/{AGENT[:4]}/inbox").status_code == 200
            assert api.get("/v1/agents/Piper [worker]/inbox").status_code == 200
    finally:
        proc.stop()


def test_redis_outage_gives_503_then_recovers(tmp_path: Path, town_name: str) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True)
    (tmp_path / "redis").mkdir()
    server.start()
    write_town(tmp_path, town_name, redis_url=server.url, extra="[townhall]\nrequest_timeout_ms = 2000\n")
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as api:
            assert api.post("/v1/backlog", json={"description": "before"}).status_code == 201
            server.kill()
            for method, path, body in [("GET", "/v1/status", None), ("POST", "/v1/backlog", {"description": "x"})]:
                r = api.request(method, path, json=body)
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["status"] == 503
            server.start()
            deadline = time.monotonic() + 15
            while api.get("/v1/backlog").status_code != 200:
                assert time.monotonic() < deadline, "API did not recover"
                time.sleep(0.1)
            assert api.get("/v1/backlog").json()["backlog"][0]["description"] == "before"
            assert api.post("/v1/backlog", json={"description": "after"}).status_code == 201
    finally:
        proc.stop()
        server.stop()


async def test_status_and_pending_with_1000_agents_and_100000_finished_tasks(
    tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis
) -> None:
    p = f"tt:{town_name}:"
    agent_ids = [str(uuid.uuid4()) for _ in range(1000)]
    now = "2026-04-04T18:00:00+00:00"
    pipe = sync_redis.pipeline(transaction=False)
    for i, aid in enumerate(agent_ids):
        pipe.hset(p + f"agent:{aid}", mapping={"id": aid, "name": f"agent-{i:04d}", "state": "idle", "cli": "claude",
                                               "created_at": now, "last_heartbeat": now, "last_active_at": now,
                                               "tasks_completed": "100", "rounds_completed": "100"})
    pipe.sadd(p + "idx:agents", *agent_ids)
    pipe.execute()
    for start in range(0, 100_000, 10_000):
        for n in range(start, start + 10_000):
            tid = str(uuid.UUID(int=n + 1))
            pipe.hset(p + f"task:{tid}", mapping={"id": tid, "description": f"done {n}", "state": "completed",
                                                  "assigned_to": agent_ids[n % 1000], "created_at": now,
                                                  "updated_at": now, "completed_at": now, "result": "ok"})
        pipe.execute()
    write_town(tmp_path, town_name, redis_url=redis_url)
    async with app_client(tmp_path) as c:
        deadline = time.monotonic() + 60
        while not sync_redis.exists(p + "meta:reconciled_at"):  # startup reconcile finished
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for i in range(5):  # a little pending work among the history
            r = await c.post("/v1/tasks/assign", json={"agent": f"agent-{i:04d}", "task": f"open {i}"})
            assert r.status_code == 201
        before = int(sync_redis.info("stats")["total_commands_processed"])
        started = time.monotonic()
        status = (await c.get("/v1/status")).json()
        elapsed = time.monotonic() - started
        used = int(sync_redis.info("stats")["total_commands_processed"]) - before
        assert status["agent_count"] == 1000
        assert sum(a["inbox_len"] for a in status["agents"]) == 5
        assert all(a["tasks_completed"] == 100 for a in status["agents"])
        # a handful of commands per agent, nothing per finished task
        assert used < 6_000, used
        assert elapsed < 10, elapsed
        pending = (await c.get("/v1/tasks/pending")).json()
        assert pending["count"] == 5 and sorted(t["description"] for t in pending["tasks"]) == [
            f"open {i}" for i in range(5)]
        assert (await c.get("/v1/backlog")).json()["count"] == 0
        orphans = (await c.post("/v1/reclaim/orphan-tasks")).json()
        assert orphans["count"] == 0


def test_agents_written_by_another_tool_while_running_are_listed(
    tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis
) -> None:
    """The original `tt spawn` writes an agent hash without our index: the periodic refresh lists it."""
    write_town(tmp_path, town_name, redis_url=redis_url, extra="[townhall]\nindex_refresh_secs = 1\n")
    proc = TownhallProcess(tmp_path).start()
    try:
        agent_id = "3b2a7c1e-1111-4222-8333-444455556666"
        sync_redis.hset(f"tt:{town_name}:agent:{agent_id}", mapping={
            "id": agent_id, "name": "late-upstream", "state": "idle", "cli": "claude",
            "agent_type": "worker", "spawn_mode": "fresh", "created_at": "2026-04-04T18:00:00.123456789+00:00",
            "last_heartbeat": "2026-04-04T18:00:00+00:00", "last_active_at": "2026-04-04T18:00:00+00:00",
            "tasks_completed": "0", "rounds_completed": "0"})
        deadline = time.monotonic() + 15
        names: list[str] = []
        while time.monotonic() < deadline:
            names = [a["name"] for a in httpx.get(f"{proc.url}/v1/agents").json()["agents"]]
            if "late-upstream" in names:
                break
            time.sleep(0.2)
        assert "late-upstream" in names
    finally:
        proc.stop()
