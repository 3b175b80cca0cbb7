"""Bad input on every write route: a problem+json body naming the field, and nothing written."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from townhall.testing.inprocess import app_client
from townhall.testing.towns import write_town

CLIS = """
[agent_clis.test-cli]
name = "test-cli"
command = "cat"
"""
BIG = "x" * (64 * 1024 + 1)
NOT_UUID = "not-a-uuid"
MISSING = "550e8400-e29b-41d4-a716-446655440000"

CASES = [
    ("POST", "/v1/agents", {"name": ""}, "name"),
    ("POST", "/v1/agents", {"name": "   "}, "name"),
    ("POST", "/v1/agents", {"name": "supervisor"}, "name"),
    ("POST", "/v1/agents", {"name": "../../etc/passwd"}, "name"),
    ("POST", "/v1/agents", {"cli": "test-cli"}, "name"),
    ("POST", "/v1/agents", {"name": 5}, "name"),
    ("POST", "/v1/agents", {"name": "new", "cli": "rm -rf /"}, "cli"),
    ("POST", "/v1/agents", {"name": "new", "cli": "test-cli", "parent_agent_id": "nope"}, "parent_agent_id"),
    ("POST", "/v1/agents", {"name": "new", "cli": "test-cli", "nickname": "a\nb"}, "nickname"),
    ("POST", "/v1/agents/prune", {"all": "yes"}, "all"),
    ("POST", "/v1/tasks/assign", {"agent": "w"}, "task"),
    ("POST", "/v1/tasks/assign", {"agent": "w", "task": BIG}, "task"),
    ("POST", "/v1/tasks/assign", {"task": "x"}, "agent"),
    ("POST", f"/v1/tasks/{NOT_UUID}/complete", {"result": "r"}, "task_id"),
    ("POST", "/v1/backlog", {"description": BIG}, "description"),
    ("POST", "/v1/backlog", {"description": "x", "tags": "notalist"}, "tags"),
    ("POST", "/v1/backlog", {"tags": []}, "description"),
    ("POST", f"/v1/backlog/{NOT_UUID}/claim", {"agent": "w"}, "task_id"),
    ("POST", f"/v1/backlog/{MISSING}/claim", {}, "agent"),
    ("POST", "/v1/backlog/assign-all", {}, "agent"),
    ("DELETE", f"/v1/backlog/{NOT_UUID}", None, "task_id"),
    ("POST", "/v1/messages/send", {"to": "w", "message": "x", "kind": "shout"}, "kind"),
    ("POST", "/v1/messages/send", {"to": "w", "message": BIG}, "message"),
    ("POST", "/v1/messages/send", {"message": "x"}, "to"),
    ("POST", "/v1/messages/send", {"to": "w", "message": "x", "urgent": "very"}, "urgent"),
    ("POST", "/v1/reclaim", {"to_backlog": "x"}, "to_backlog"),
    ("POST", "/v1/reclaim/orphan-tasks", {"action": "explode"}, "action"),
    ("POST", f"/v1/missions/{NOT_UUID}/stop", {"force": True}, "mission_id"),
    ("POST", f"/v1/missions/{NOT_UUID}/resume", None, "mission_id"),
    ("POST", f"/v1/missions/{NOT_UUID}/complete", None, "mission_id"),
    ("POST", f"/v1/missions/{MISSING}/fail", {"reason": 5}, "reason"),
    ("DELETE", f"/v1/missions/{NOT_UUID}", None, "mission_id"),
    ("GET", f"/v1/tasks/{NOT_UUID}", None, "task_id"),
    ("GET", f"/v1/missions/{NOT_UUID}", None, "mission_id"),
]


def snapshot(sync_redis, town: str) -> dict[str, object]:
    """Every key of the town with its value (a test may SCAN; townhall never does on a request), but for
    the one the upkeep's scaling watch writes on its own schedule, whatever the requests do."""
    out: dict[str, object] = {}
    for key in sorted(sync_redis.scan_iter(match=f"tt:{town}:*", count=1000)):
        if key == f"tt:{town}:meta:last_recommendation":
            continue
        kind = sync_redis.type(key)
        if kind == "hash":
            out[key] = sync_redis.hgetall(key)
        elif kind == "list":
            out[key] = sync_redis.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(sync_redis.smembers(key))
        elif kind == "string":
            out[key] = sync_redis.get(key)
        else:
            out[key] = kind
    return out


async def reconciled(sync_redis, town: str) -> None:
    """Startup reconcile writes its own keys in the background: let it finish before a snapshot."""
    deadline = time.monotonic() + 10
    while not sync_redis.exists(f"tt:{town}:meta:reconciled_at"):
        assert time.monotonic() < deadline, "reconcile did not finish"
        await asyncio.sleep(0.02)


@pytest.fixture
def town(tmp_path: Path, town_name: str, redis_url: str) -> Path:
    write_town(tmp_path, town_name, redis_url=redis_url, extra=CLIS)
    return tmp_path


async def test_bad_input_names_the_field_and_writes_nothing(town: Path, town_name: str, sync_redis) -> None:
    async with app_client(town) as client:
        assert (await client.post("/v1/agents", json={"name": "w", "cli": "test-cli"})).status_code == 201
        assert (await client.post("/v1/backlog", json={"description": "queued"})).status_code == 201
        await reconciled(sync_redis, town_name)
        before = snapshot(sync_redis, town_name)
        for method, path, body, field in CASES:
            r = await client.request(method, path, json=body) if body is not None else await client.request(method, path)
            assert r.status_code == 422, (method, path, body, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/problem+json")
            problem = r.json()
            assert problem["status"] == 422 and problem["instance"] == path and problem["request_id"]
            assert field in [e["field"] for e in problem["errors"]], (path, field, problem)
            assert snapshot(sync_redis, town_name) == before, (method, path, body)


async def test_malformed_and_missing_bodies(town: Path, town_name: str, sync_redis) -> None:
    async with app_client(town) as client:
        await reconciled(sync_redis, town_name)
        before = snapshot(sync_redis, town_name)
        r = await client.post("/v1/backlog", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        r = await client.post("/v1/backlog", content=b"description=x",
                              headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        r = await client.post("/v1/backlog")  # a required body left out: 422 saying which body
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
        for path in ("/v1/agents/prune", "/v1/reclaim"):  # optional (upstream requires them): the safe default
            r = await client.post(path)
            assert r.status_code == 200, path
        assert snapshot(sync_redis, town_name) == before


async def test_optional_bodies(town: Path) -> None:
    async with app_client(town) as client:
        r = await client.post("/v1/reclaim/orphan-tasks")
        assert r.status_code == 200 and r.json() == {"action": "list", "count": 0, "orphans": []}
        r = await client.post("/v1/reclaim/orphan-tasks", json={"action": "backlog"})
        assert r.status_code == 200 and r.json()["action"] == "to_backlog"
        assert (await client.post("/v1/recover")).status_code == 200
        r = await client.post(f"/v1/missions/{MISSING}/stop")
        assert r.status_code == 404 and r.json()["detail"] == f"mission {MISSING} not found"
