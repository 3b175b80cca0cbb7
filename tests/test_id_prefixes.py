"""Issue 17 item 3: the ids ``tt`` prints can be typed back. Any unique prefix of at least 4 hex
digits names an agent, a task or a mission, in REST and in ``tt`` alike; a prefix several ids share is
a 409 listing them; fewer than 4 characters or not hex is a 422."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from townhall.domain import Agent, Task, TaskState
from townhall.keys import TownKeys
from townhall.testing.inprocess import app_client
from townhall.testing.process import run_cli
from townhall.testing.seed import TownSeed

FIRST = "abcd1111-0000-4000-8000-000000000001"
SECOND = "abcd2222-0000-4000-8000-000000000002"


async def _task(seed: TownSeed, task_id: str, description: str) -> Task:
    task = Task.new(description)
    task.id = task_id
    return await seed.store.tasks.create(task)


async def test_rest_takes_unique_prefixes_and_lists_candidates(town_dir: Path, seed: TownSeed) -> None:
    await _task(seed, FIRST, "first")
    await _task(seed, SECOND, "second")
    await seed.store.backlog.push(SECOND)
    agent = await seed.store.agents.create(Agent.new("worker-1", "test-cli", agent_id="7d1bb9da-0000-4000-8000-"
                                                                                      "000000000003"))
    async with app_client(town_dir) as client:
        assert (await client.get("/v1/tasks/abcd1")).json()["id"] == FIRST
        assert (await client.get("/v1/tasks/ABCD2222-00")).json()["description"] == "second"
        ambiguous = await client.get("/v1/tasks/abcd")
        assert ambiguous.status_code == 409
        assert ambiguous.json()["candidates"] == [FIRST, SECOND]
        assert (await client.get("/v1/tasks/abce")).status_code == 404
        short = await client.get("/v1/tasks/abc")
        assert short.status_code == 422 and short.json()["errors"][0]["field"] == "task_id"
        # Backlog routes and the agent references take prefixes too.
        claimed = await client.post("/v1/backlog/abcd22/claim", json={"agent": "7d1bb9da"})
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["task_id"] == SECOND and claimed.json()["agent_id"] == agent.id
        assert (await client.get("/v1/agents/7d1bb9da/inbox")).json()["total"] == 1
        mission = await seed.active_mission()
        assert (await client.get(f"/v1/missions/{mission.id[:6]}")).json()["id"] == mission.id


async def test_the_prefix_index_follows_creates_deletes_and_reconcile(town_dir: Path, seed: TownSeed,
                                                                      sync_redis: redis.Redis,
                                                                      town_name: str) -> None:
    keys = TownKeys(town_name)
    task = await _task(seed, FIRST, "first")
    assert sync_redis.zrange(keys.task_ids, 0, -1) == [FIRST]
    await seed.store.tasks.delete(task.id)
    assert sync_redis.zcard(keys.task_ids) == 0
    # Written by another tool (no index entry): the startup reconcile adds it.
    sync_redis.hset(keys.task(SECOND), mapping={"id": SECOND, "description": "elsewhere", "state": "pending",
                                                "created_at": "2026-01-01T00:00:00+00:00",
                                                "updated_at": "2026-01-01T00:00:00+00:00"})
    await seed.store.reconcile()
    assert await seed.store.tasks.ids_with_prefix("abcd", 5) == [SECOND]
    # A record deleted behind our back is not offered (and leaves the index).
    sync_redis.delete(keys.task(SECOND))
    assert await seed.store.tasks.ids_with_prefix("abcd", 5) == []
    assert sync_redis.zcard(keys.task_ids) == 0


async def test_task_actions_and_logs_take_prefixes(town_dir: Path, seed: TownSeed) -> None:
    await _task(seed, FIRST, "first")
    await _task(seed, SECOND, "second")
    await seed.store.backlog.push(FIRST)
    async with app_client(town_dir) as client:
        cancelled = await client.post("/v1/tasks/abcd11/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["id"] == FIRST and cancelled.json()["state"] == "cancelled"
        retried = await client.post("/v1/tasks/abcd1111/retry")
        assert retried.status_code == 200 and retried.json()["state"] == "pending"
        ambiguous = await client.post("/v1/tasks/abcd/cancel")
        assert ambiguous.status_code == 409 and ambiguous.json()["candidates"] == [FIRST, SECOND]
        # No run log was written: the prefix still names the task (a 404 about its log, not about the id).
        log = await client.get("/v1/tasks/abcd22/log")
        assert log.status_code == 404 and SECOND in log.json()["detail"], log.text
        assert (await client.get("/v1/tasks/abcd/log")).status_code == 409


async def test_the_id_index_is_kept_with_the_history(town_dir: Path, seed: TownSeed, sync_redis: redis.Redis,
                                                     town_name: str) -> None:
    # One mechanism: the history Lua files a task in idx:history and idx:tasks:ids together (the name is
    # derived from the counts key, no extra KEYS slot: the event stream stays the last key).
    keys = TownKeys(town_name)
    await _task(seed, FIRST, "first")
    assert sync_redis.zrange(keys.history, 0, -1) == [FIRST]
    assert sync_redis.zrange(keys.task_ids, 0, -1) == [FIRST]
    assert keys.task_ids not in seed.store.tasks._keys(FIRST) and seed.store.tasks._keys(FIRST)[-1] == keys.events
    assert await seed.store.tasks.finish(FIRST, TaskState.COMPLETED, "done", agent_id=None) is not None
    assert sync_redis.zrange(keys.task_ids, 0, -1) == [FIRST]  # a finished task keeps its place
    # Indexed before the id index existed (or the index lost): the history rebuild of reconcile fills it,
    # and drops ids whose record is gone.
    sync_redis.delete(keys.task_ids)
    sync_redis.zadd(keys.task_ids, {SECOND: 0})
    await seed.store.reconcile()
    assert sync_redis.zrange(keys.task_ids, 0, -1) == [FIRST]
    assert await seed.store.tasks.ids_with_prefix("abcd", 5) == [FIRST]
    await seed.store.tasks.delete(FIRST)
    assert sync_redis.zcard(keys.task_ids) == 0 and sync_redis.zcard(keys.history) == 0


def test_tt_takes_back_the_ids_it_prints(town_dir: Path) -> None:
    def tt(*args: str) -> dict:  # type: ignore[type-arg]
        result = run_cli("--town", str(town_dir), *args, "--json", program="tt")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    agent = tt("spawn", "w1")
    agent_id = agent["agent_id"]
    task = tt("assign", "w1", "fix the parser")
    assert tt("task", "show", task["task_id"][:8])["id"] == task["task_id"]
    assert tt("inbox", agent_id[:8])["total"] == 1
    refused = run_cli("--town", str(town_dir), "task", "show", "xyz", program="tt")
    assert refused.returncode == 1 and "at least 4 leading hex digits" in refused.stderr
