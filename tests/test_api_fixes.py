"""Each contract fix (reference §12 gaps 10–23) with a test the original behaviour would fail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from townhall.domain import SUPERVISOR_ID
from townhall.testing.inprocess import app_client
from townhall.testing.towns import write_town

CLIS = """
[agent_clis.test-cli]
name = "test-cli"
command = "cat"
"""
MISSING = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
def town(tmp_path: Path, town_name: str, redis_url: str) -> Path:
    write_town(tmp_path, town_name, redis_url=redis_url, extra=CLIS)
    return tmp_path


async def spawn(client, name: str, **extra) -> dict:
    r = await client.post("/v1/agents", json={"name": name, "cli": "test-cli", **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def test_gap10_status_codes(town: Path) -> None:
    async with app_client(town) as c:
        for method, path, body in [
            ("POST", "/v1/tasks/assign", {"agent": "ghost", "task": "x"}),
            ("POST", "/v1/messages/send", {"to": "ghost", "message": "x"}),
            ("POST", "/v1/messages/send", {"to": "supervisor", "from": "ghost", "message": "x"}),
            ("GET", "/v1/agents/ghost/inbox", None),
            ("POST", "/v1/backlog/assign-all", {"agent": "ghost"}),
            ("POST", "/v1/agents/ghost/kill", None),
            ("GET", f"/v1/tasks/{MISSING}", None),
            ("GET", f"/v1/missions/{MISSING}", None),
            ("POST", f"/v1/backlog/{MISSING}/claim", {"agent": "supervisor"}),
        ]:
            r = await c.request(method, path, json=body) if body else await c.request(method, path)
            assert r.status_code == 404, (path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        a = await spawn(c, "one", nickname="Twin")
        b = await spawn(c, "two", nickname="Twin")
        r = await c.post("/v1/tasks/assign", json={"agent": "twin", "task": "x"})
        assert r.status_code == 409
        assert sorted(r.json()["candidates"]) == sorted([f"Twin [one] ({a['agent_id'][:4]})",
                                                         f"Twin [two] ({b['agent_id'][:4]})"])


async def test_gap14_spawn_echoes_stored_nickname(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        body = await spawn(c, "w")
        assert body["nickname"] and body["nickname"] == sync_redis.hget(f"tt:{town_name}:agent:{body['agent_id']}", "nickname")


async def test_gap15_names_unique_and_valid(town: Path) -> None:
    async with app_client(town) as c:
        first = await spawn(c, "worker")
        r = await c.post("/v1/agents", json={"name": "Worker", "cli": "test-cli"})
        assert r.status_code == 409 and first["agent_id"][:4] in r.json()["detail"]
        await c.post("/v1/agents/worker/kill")
        assert (await c.post("/v1/agents", json={"name": "worker", "cli": "test-cli"})).status_code == 409
        assert (await c.post("/v1/agents/prune", json={})).json() == {"removed": 1, "agents": ["worker"]}
        await spawn(c, "worker")  # free again after prune


async def test_gap13_pending_never_invents_ids(town: Path) -> None:
    async with app_client(town) as c:
        await spawn(c, "w")
        await c.post("/v1/messages/send", json={"to": "w", "message": "plain task"})
        first = (await c.get("/v1/tasks/pending")).json()
        second = (await c.get("/v1/tasks/pending")).json()
        assert first == second and first["count"] == 1 and first["tasks"][0]["source"] == "message"


async def test_gap18_claim_with_bad_agent_keeps_task(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        task_id = (await c.post("/v1/backlog", json={"description": "keep me"})).json()["task_id"]
        r = await c.post(f"/v1/backlog/{task_id}/claim", json={"agent": "nobody"})
        assert r.status_code == 404
        assert sync_redis.lrange(f"tt:{town_name}:backlog", 0, -1) == [task_id]
        assert sync_redis.hget(f"tt:{town_name}:task:{task_id}", "state") == "pending"


async def test_concurrent_claims_one_winner(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        await spawn(c, "a")
        await spawn(c, "b")
        task_id = (await c.post("/v1/backlog", json={"description": "contested"})).json()["task_id"]
        results = await asyncio.gather(*(c.post(f"/v1/backlog/{task_id}/claim", json={"agent": n})
                                         for n in ["a", "b", "a", "b"]))
        assert sorted(r.status_code for r in results) == [200, 404, 404, 404]
        winner = next(r.json() for r in results if r.status_code == 200)
        assert sync_redis.hget(f"tt:{town_name}:task:{task_id}", "assigned_to") == winner["agent_id"]
        inboxes = [sync_redis.llen(f"tt:{town_name}:inbox:{aid}") for aid in
                   {r.json()["agent_id"] for r in results if r.status_code == 200}]
        assert inboxes == [1]


async def test_assign_all(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        w = await spawn(c, "w")
        ids = [(await c.post("/v1/backlog", json={"description": f"t{i}"})).json()["task_id"] for i in range(3)]
        body = (await c.post("/v1/backlog/assign-all", json={"agent": "w"})).json()
        assert body == {"assigned": 3, "tasks": ids}
        assert sync_redis.llen(f"tt:{town_name}:backlog") == 0
        assert sync_redis.llen(f"tt:{town_name}:inbox:{w['agent_id']}") == 3


async def test_gap19_reclaim_list_mode_keeps_messages_and_cold_is_not_dead(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        cold = await spawn(c, "cold")
        await c.post("/v1/tasks/assign", json={"agent": "cold", "task": "x"})
        sync_redis.hset(f"tt:{town_name}:agent:{cold['agent_id']}", "state", "cold")
        body = (await c.post("/v1/reclaim", json={"to_backlog": True})).json()
        assert body["reclaimed"] == 0  # Cold agents are scaled to zero, not dead
        sync_redis.hset(f"tt:{town_name}:agent:{cold['agent_id']}", "state", "error")
        listed = (await c.post("/v1/reclaim", json={})).json()
        assert listed["reclaimed"] == 1 and listed["destination"] == "listed"
        assert listed["items"][0]["description"] == "x"
        assert sync_redis.llen(f"tt:{town_name}:inbox:{cold['agent_id']}") == 1


async def test_gap20_orphans(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        w = await spawn(c, "w")
        keep = (await c.post("/v1/tasks/assign", json={"agent": "w", "task": "requeue"})).json()["task_id"]
        gone = (await c.post("/v1/tasks/assign", json={"agent": "w", "task": "delete"})).json()["task_id"]
        boss = (await c.post("/v1/tasks/assign", json={"agent": "supervisor", "task": "boss"})).json()["task_id"]
        await c.post("/v1/agents/w/kill")
        listed = (await c.post("/v1/reclaim/orphan-tasks", json={"action": "list"})).json()
        assert listed["count"] == 2 and {o["task_id"] for o in listed["orphans"]} == {keep, gone}
        assert all(o["reason"] == "agent_terminal" and o["state"] == "assigned" for o in listed["orphans"])
        assert boss not in {o["task_id"] for o in listed["orphans"]}
        # A stale backlog entry for an orphan (e.g. pushed by the original reclaim) must go too.
        sync_redis.rpush(f"tt:{town_name}:backlog", gone)
        await c.post("/v1/agents/prune", json={})  # assignee gone → agent_missing
        listed = (await c.post("/v1/reclaim/orphan-tasks")).json()
        assert {o["reason"] for o in listed["orphans"]} == {"agent_missing"}
        body = (await c.post("/v1/reclaim/orphan-tasks", json={"action": "delete"})).json()
        assert body["action"] == "delete" and body["count"] == 2
        assert sync_redis.lrange(f"tt:{town_name}:backlog", 0, -1) == []  # no dangling backlog entry
        assert not sync_redis.exists(f"tt:{town_name}:task:{gone}")
        assert (await c.get("/v1/backlog")).json()["count"] == 0
        assert not sync_redis.exists(f"tt:{town_name}:inbox:{w['agent_id']}")


async def test_orphans_to_backlog_and_cancel(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        w = await spawn(c, "w")
        t1 = (await c.post("/v1/tasks/assign", json={"agent": "w", "task": "one"})).json()["task_id"]
        await c.post("/v1/agents/w/kill")
        body = (await c.post("/v1/reclaim/orphan-tasks", json={"action": "to_backlog"})).json()
        assert body["count"] == 1
        task = (await c.get(f"/v1/tasks/{t1}")).json()
        assert task["state"] == "pending" and task["assigned_to"] is None and task["started_at"] is None
        assert sync_redis.lrange(f"tt:{town_name}:backlog", 0, -1) == [t1]
        assert sync_redis.llen(f"tt:{town_name}:inbox:{w['agent_id']}") == 0  # no second delivery
        # A Stopped agent refuses new work (issue 11): the next orphan is assigned while it is up.
        assert (await c.post("/v1/agents/w/restart")).status_code == 200
        t2 = (await c.post("/v1/tasks/assign", json={"agent": w["agent_id"], "task": "two"})).json()["task_id"]
        await c.post("/v1/agents/w/kill")
        body = (await c.post("/v1/reclaim/orphan-tasks", json={"action": "cancel"})).json()
        assert body["count"] == 1
        task = (await c.get(f"/v1/tasks/{t2}")).json()
        assert task["state"] == "cancelled" and task["result"] == "Cancelled: assignee is in a terminal state"


async def test_gap23_24_kill_and_restart(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        w = await spawn(c, "w")
        r = await c.post("/v1/agents/w/restart")
        assert r.status_code == 409  # Starting is not terminal
        r = await c.post("/v1/agents/w/kill")
        assert r.json() == {"status": "stopped", "agent": "w", "agent_id": w["agent_id"]}
        assert sync_redis.get(f"tt:{town_name}:stop:{w['agent_id']}") == "1"
        assert sync_redis.hget(f"tt:{town_name}:agent:{w['agent_id']}", "state") == "stopped"
        r = await c.post("/v1/agents/w/restart")
        assert r.status_code == 200 and r.json()["status"] == "restarted"
        raw = sync_redis.hgetall(f"tt:{town_name}:agent:{w['agent_id']}")
        assert raw["state"] == "idle" and raw["rounds_completed"] == "0"
        assert not sync_redis.exists(f"tt:{town_name}:stop:{w['agent_id']}")
        assert (await c.post("/v1/agents/supervisor/kill")).status_code == 200


async def test_status_deep(town: Path, sync_redis, town_name: str) -> None:
    async with app_client(town) as c:
        w = await spawn(c, "w")
        task_id = (await c.post("/v1/tasks/assign", json={"agent": "w", "task": "deep work"})).json()["task_id"]
        sync_redis.hset(f"tt:{town_name}:agent:{w['agent_id']}", "current_task", task_id)
        await c.post("/v1/agents/w/kill")
        shallow = (await c.get("/v1/status")).json()["agents"][0]
        assert "recent_activity" not in shallow and shallow["current_scope"] == "deep work"
        assert shallow["inbox_len"] == 1 and shallow["state"] == "Stopped"
        deep = (await c.get("/v1/status?deep=true")).json()["agents"][0]
        assert deep["recent_activity"] == ["🛑 Stop requested"]
        assert deep["current_task"]["id"] == task_id and deep["current_task"]["state"] == "assigned"
        assert (await c.get("/v1/status?deep=maybe")).status_code == 422


async def test_spawn_launches_worker_and_failure_marks_error(tmp_path: Path, town_name: str, redis_url: str,
                                                             sync_redis) -> None:
    launched: list[str] = []

    class Recorder:
        name = "recorder"

        async def launch(self, agent, town_root) -> None:
            if agent.name == "broken":
                raise RuntimeError("no capacity")
            launched.append(agent.id)

    from townhall import hookimpl
    from townhall.registry import LauncherSpec

    class Plugin:
        @hookimpl
        def townhall_register_launchers(self, register) -> None:
            register(LauncherSpec(name="recorder", factory=lambda config: Recorder(), summary="test"))

    write_town(tmp_path, town_name, redis_url=redis_url, extra=CLIS + '[agent]\nlauncher = "recorder"\n')
    async with app_client(tmp_path, extra=[("recorder", Plugin())]) as c:
        w = await spawn(c, "w")
        assert launched == [w["agent_id"]]
        r = await c.post("/v1/agents", json={"name": "broken", "cli": "test-cli"})
        assert r.status_code == 409 and "no capacity" in r.json()["detail"]
        states = {a["name"]: a["state"] for a in (await c.get("/v1/agents")).json()["agents"]}
        assert states["broken"] == "Error"
        await c.post("/v1/agents/w/kill")
        await c.post("/v1/agents/w/restart")
        assert launched == [w["agent_id"], w["agent_id"]]


async def test_missions_lifecycle(town: Path, sync_redis, town_name: str) -> None:
    mid = "6f1c7f2e-0000-4000-8000-000000000001"
    doc = {"id": mid, "objective_refs": [{"type": "issue", "owner": "o", "repo": "r", "number": 1}],
           "state": "running", "policy": {"max_parallel_items": 2, "reviewer_required": True, "auto_merge": False,
                                          "watch_interval_secs": 180},
           "created_at": "2026-04-04T18:00:00Z", "updated_at": "2026-04-04T18:00:00Z",
           "dispatcher_help_request_attempts": 2, "extra_field": {"kept": True}}
    sync_redis.set(f"tt:{town_name}:mission:{mid}", json.dumps(doc))
    sync_redis.sadd(f"tt:{town_name}:mission:active", mid)
    help_msg = {"id": "a1b2c3d4-0000-4000-8000-000000000009", "from": SUPERVISOR_ID, "to": SUPERVISOR_ID,
                "type": "query", "question": f"[Mission Help Needed] Mission {mid} is stuck", "priority": "normal",
                "created_at": "2026-04-04T18:00:00Z", "correlation_id": None}
    other = {**help_msg, "id": "a1b2c3d4-0000-4000-8000-00000000000a", "question": "unrelated"}
    sync_redis.rpush(f"tt:{town_name}:inbox:{SUPERVISOR_ID}", json.dumps(help_msg), json.dumps(other))
    async with app_client(town) as c:
        listing = (await c.get("/v1/missions")).json()
        assert listing["count"] == 1 and listing["missions"][0]["active"] is True
        assert listing["missions"][0]["objective_count"] == 1
        r = await c.post(f"/v1/missions/{mid}/stop")
        assert r.json() == {"id": mid, "state": "blocked"}
        stored = json.loads(sync_redis.get(f"tt:{town_name}:mission:{mid}"))
        assert stored["blocked_reason"] == "Stopped by user" and stored["extra_field"] == {"kept": True}
        assert stored["dispatcher_help_request_attempts"] == 0
        assert not sync_redis.sismember(f"tt:{town_name}:mission:active", mid)
        assert [json.loads(m)["question"] for m in sync_redis.lrange(f"tt:{town_name}:inbox:{SUPERVISOR_ID}", 0, -1)] == ["unrelated"]
        assert (await c.get("/v1/missions?active_only=true")).json()["count"] == 0
        r = await c.post(f"/v1/missions/{mid}/resume")
        assert r.json() == {"id": mid, "state": "running"}
        assert (await c.post(f"/v1/missions/{mid}/resume")).json()["note"] == "already running"
        r = await c.post(f"/v1/missions/{mid}/fail", json={"reason": "gave up"})
        assert r.json() == {"id": mid, "state": "failed", "reason": "gave up"}
        assert (await c.post(f"/v1/missions/{mid}/stop", json={"force": True})).status_code == 409  # GAP 31
        assert (await c.post(f"/v1/missions/{mid}/resume")).status_code == 409
        assert (await c.post(f"/v1/missions/{mid}/complete")).json() == {"id": mid, "state": "completed"}
        detail = (await c.get(f"/v1/missions/{mid}")).json()
        assert detail["state"] == "completed" and detail["events"][0].endswith("Mission completed via API")
        sync_redis.set(f"tt:{town_name}:mission:{mid}:dispatch_lock", "owner")
        assert (await c.delete(f"/v1/missions/{mid}")).json() == {"id": mid, "deleted": True}
        assert not sync_redis.exists(f"tt:{town_name}:mission:{mid}", f"tt:{town_name}:mission:{mid}:dispatch_lock",
                                     f"tt:{town_name}:mission:{mid}:events")
        assert (await c.delete(f"/v1/missions/{mid}")).status_code == 404
