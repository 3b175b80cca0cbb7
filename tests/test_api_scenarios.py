"""Reference §11.1 (1–12, 23) and §11.2 (2–13) scenarios over HTTP against a real townhall process."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from townhall.domain import SUPERVISOR_ID
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import write_town

CLIS = """
[agent_clis.test-cli]
name = "test-cli"
command = "cat"
"""


@pytest.fixture
def api(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[httpx.Client]:
    write_town(tmp_path, town_name, redis_url=redis_url, extra=CLIS)
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as client:
            yield client
    finally:
        proc.stop()


def spawn(api: httpx.Client, name: str, **extra: str) -> dict:
    r = api.post("/v1/agents", json={"name": name, "cli": "test-cli", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_spawn_and_list_agents(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.1 1, 3, 5; §11.2 5
    body = spawn(api, "test-worker")
    assert body["name"] == "test-worker" and body["cli"] == "test-cli" and body["state"] == "Starting"
    raw = sync_redis.hgetall(f"tt:{town_name}:agent:{body['agent_id']}")
    assert raw["name"] == "test-worker" and raw["state"] == "starting" and raw["agent_type"] == "worker"
    assert body["nickname"] == raw["nickname"]  # the stored auto nickname (GAP 14)
    assert body["agent_id"] != SUPERVISOR_ID
    spawn(api, "worker-1")
    spawn(api, "reviewer")
    listing = api.get("/v1/agents").json()
    assert listing["count"] == 3
    assert sorted(a["name"] for a in listing["agents"]) == ["reviewer", "test-worker", "worker-1"]
    assert all(a["state"] == "Starting" for a in listing["agents"])


def test_backlog_order_and_tags(api: httpx.Client) -> None:
    # §11.1 2, 6
    ids = []
    for text, tags in [("first", ["test"]), ("second", [])]:
        r = api.post("/v1/backlog", json={"description": text, "tags": tags})
        assert r.status_code == 201 and r.json()["description"] == text
        ids.append(r.json()["task_id"])
    body = api.get("/v1/backlog").json()
    assert body["count"] == 2 and [t["task_id"] for t in body["backlog"]] == ids
    assert body["backlog"][0] == {"task_id": ids[0], "description": "first", "tags": ["test"]}


def test_status_empty_town(api: httpx.Client, town_name: str) -> None:
    # §11.1 4
    body = api.get("/v1/status").json()
    assert body["name"] == town_name and body["agent_count"] == 0 and body["agents"] == []
    town = api.get("/v1/town").json()
    assert town["name"] == town_name and "redis_url" in town


def test_assign_task(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.1 7
    agent = spawn(api, "worker")
    r = api.post("/v1/tasks/assign", json={"agent": "worker", "task": "Do something"})
    assert r.status_code == 201
    body = r.json()
    assert body["agent_name"] == "worker" and body["agent_id"] == agent["agent_id"]
    inbox = sync_redis.lrange(f"tt:{town_name}:inbox:{agent['agent_id']}", 0, -1)
    assert len(inbox) == 1 and '"type":"task_assign"' in inbox[0] and body["task_id"] in inbox[0]
    pending = api.get("/v1/tasks/pending").json()
    assert pending["count"] == 1
    assert pending["tasks"][0]["task_id"] == body["task_id"]
    assert pending["tasks"][0]["description"] == "Do something"
    task = api.get(f"/v1/tasks/{body['task_id']}").json()
    assert task["state"] == "assigned" and task["assigned_to"] == agent["agent_id"]


def test_send_message_and_sender(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.1 8, 9, 10
    sender = spawn(api, "sender")
    receiver = spawn(api, "receiver")
    r = api.post("/v1/messages/send", json={"to": "receiver", "message": "Hello!", "kind": "task"})
    assert r.status_code == 201 and r.json()["urgent"] is False and r.json()["to_agent"] == receiver["agent_id"]
    r = api.post("/v1/messages/send", json={"to": "receiver", "from": "sender", "message": "hello", "kind": "info"})
    assert r.status_code == 201
    api.post("/v1/messages/send", json={"to": "receiver", "from": sender["agent_id"], "message": "x", "kind": "info"})
    raws = sync_redis.lrange(f"tt:{town_name}:inbox:{receiver['agent_id']}", 0, -1)
    senders = [__import__("json").loads(m)["from"] for m in raws]
    assert senders == [SUPERVISOR_ID, sender["agent_id"], sender["agent_id"]]


def test_inbox_get_and_post(api: httpx.Client) -> None:
    # §11.1 11
    spawn(api, "receiver")
    api.post("/v1/messages/send", json={"to": "receiver", "message": "note", "kind": "info"})
    for method in ("GET", "POST"):
        r = api.request(method, "/v1/agents/receiver/inbox")
        assert r.status_code == 200
        body = r.json()
        assert body["agent"] == "receiver" and body["total"] == 1 and body["urgent"] == 0
        assert body["messages"][0]["type"] == "info" and body["messages"][0]["summary"] == "note"


def test_delete_backlog(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.1 12
    task_id = api.post("/v1/backlog", json={"description": "Remove me"}).json()["task_id"]
    r = api.delete(f"/v1/backlog/{task_id}")
    assert r.status_code == 200 and r.json() == {"removed": True, "task_id": task_id}
    assert api.get("/v1/backlog").json()["count"] == 0
    assert not sync_redis.exists(f"tt:{town_name}:task:{task_id}")
    r = api.delete(f"/v1/backlog/{task_id}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_auth_none_allows_all(api: httpx.Client) -> None:
    # §11.1 23
    for path in ("/v1/status", "/v1/agents", "/v1/backlog", "/v1/town", "/v1/tasks/pending", "/v1/missions"):
        assert api.get(path).status_code == 200, path


def test_supervisor_aliases_share_a_mailbox(api: httpx.Client) -> None:
    # §11.2 2
    api.post("/v1/messages/send", json={"to": "conductor", "message": "status?", "kind": "info"})
    for ref in ("supervisor", "conductor", "Conductor"):
        body = api.get(f"/v1/agents/{ref}/inbox").json()
        assert body["total"] == 1 and body["messages"][0]["summary"] == "status?"
        assert body["agent_id"] == SUPERVISOR_ID


def test_lookup_by_nickname_short_id_and_label(api: httpx.Client) -> None:
    # §11.2 3
    agent = spawn(api, "piper-1", nickname="Piper", role_id="worker")
    assert api.post("/v1/agents/piper-1/kill").json()["status"] == "stopped"
    for ref in ("Piper", agent["agent_id"][:4], "Piper [worker]"):
        r = api.get(f"/v1/agents/{ref}/inbox")
        assert r.status_code == 200 and r.json()["agent_id"] == agent["agent_id"], ref


def test_reserved_names(api: httpx.Client) -> None:
    # §11.2 4
    for name in ("supervisor", "conductor", "Supervisor"):
        r = api.post("/v1/agents", json={"name": name, "cli": "test-cli"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    assert api.post("/v1/agents", json={"name": "conductor-helper", "cli": "test-cli"}).status_code == 201


def test_high_priority_first(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.2 6 at the store level: a high-priority message is taken before an earlier low one
    agent = spawn(api, "w")
    import asyncio

    import redis.asyncio as aioredis

    from townhall.domain import Message, Priority, TaskBody
    from townhall.store import TownStore

    async def send_two() -> None:
        client = aioredis.Redis.from_url(sync_redis.connection_pool.connection_kwargs.get("path") and
                                         f"unix://{sync_redis.connection_pool.connection_kwargs['path']}",
                                         decode_responses=True)
        store = TownStore(client, town_name)
        await store.messages.send(Message.new(SUPERVISOR_ID, agent["agent_id"], TaskBody(description="low"),
                                              priority=Priority.LOW))
        await store.messages.send(Message.new(SUPERVISOR_ID, agent["agent_id"], TaskBody(description="high"),
                                              priority=Priority.HIGH))
        await client.aclose()

    asyncio.run(send_two())
    first = api.get("/v1/agents/w/inbox").json()["messages"][0]
    assert first["summary"] == "high"


def test_task_lifecycle_over_http(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.2 7, 9 (completion through the REST addition)
    agent = spawn(api, "w")
    task_id = api.post("/v1/tasks/assign", json={"agent": "w", "task": "job"}).json()["task_id"]
    sync_redis.hset(f"tt:{town_name}:agent:{agent['agent_id']}", "current_task", task_id)
    r = api.post(f"/v1/tasks/{task_id}/complete", json={"result": "done well"})
    assert r.status_code == 200 and r.json()["state"] == "completed" and r.json()["result"] == "done well"
    raw = sync_redis.hgetall(f"tt:{town_name}:agent:{agent['agent_id']}")
    assert raw["tasks_completed"] == "1" and "current_task" not in raw
    status = api.get("/v1/status").json()["agents"][0]
    assert status["tasks_completed"] == 1 and status["current_scope"] is None


def test_recover_stale_agent(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.2 10, 11
    from datetime import datetime, timedelta, timezone

    stale = spawn(api, "stale")
    fresh = spawn(api, "fresh")
    paused = spawn(api, "paused")
    old = (datetime.now(timezone.utc) - timedelta(minutes=3)).isoformat()
    sync_redis.hset(f"tt:{town_name}:agent:{stale['agent_id']}", mapping={"state": "idle", "last_heartbeat": old})
    sync_redis.hset(f"tt:{town_name}:agent:{fresh['agent_id']}", mapping={
        "state": "idle", "last_heartbeat": (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()})
    sync_redis.hset(f"tt:{town_name}:agent:{paused['agent_id']}", mapping={"state": "paused", "last_heartbeat": old})
    body = api.post("/v1/recover").json()
    assert body == {"checked": 3, "recovered": 1, "agents": ["stale"]}
    assert sync_redis.hget(f"tt:{town_name}:agent:{stale['agent_id']}", "state") == "stopped"
    assert sync_redis.hget(f"tt:{town_name}:agent:{paused['agent_id']}", "state") == "paused"


def test_reclaim_to_agent_and_backlog(api: httpx.Client, sync_redis, town_name: str) -> None:
    # §11.2 13
    dead = spawn(api, "dead")
    alive = spawn(api, "alive")
    t1 = api.post("/v1/tasks/assign", json={"agent": "dead", "task": "one"}).json()["task_id"]
    api.post("/v1/messages/send", json={"to": "dead", "message": "plain work"})
    api.post("/v1/agents/dead/kill")
    listed = api.post("/v1/reclaim", json={}).json()
    assert listed["destination"] == "listed" and listed["reclaimed"] == 2
    assert sync_redis.llen(f"tt:{town_name}:inbox:{dead['agent_id']}") == 2  # list mode keeps them
    moved = api.post("/v1/reclaim", json={"to": "alive"}).json()
    assert moved == {**moved, "reclaimed": 2, "destination": f"agent:{alive['agent_id']}"}
    assert sync_redis.llen(f"tt:{town_name}:inbox:{dead['agent_id']}") == 0
    raws = sync_redis.lrange(f"tt:{town_name}:inbox:{alive['agent_id']}", 0, -1)
    assert len(raws) == 2 and t1 in raws[0]
    assert api.get(f"/v1/tasks/{t1}").json()["assigned_to"] == alive["agent_id"]
    api.post("/v1/agents/alive/kill")
    back = api.post("/v1/reclaim", json={"to_backlog": True}).json()
    assert back["destination"] == "backlog" and back["reclaimed"] == 2
    backlog = api.get("/v1/backlog").json()["backlog"]
    assert [b["description"] for b in backlog] == ["one", "plain work"]
    task = api.get(f"/v1/tasks/{t1}").json()
    assert task["state"] == "pending" and task["assigned_to"] is None
