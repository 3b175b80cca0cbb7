"""Two townhall replicas (two real processes) on one Redis, many clients each (issue 15, item 3):
claims of the same backlog tasks, assign-all, reclaim, prune and spawn at once — no task assigned twice,
none lost, indexes and counts consistent — and a replica starting (its reconcile) while the other
serves under load corrupts nothing. Bounded: a few dozen tasks, a few seconds of load."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from townhall.domain import AgentState
from townhall.domain.messages import Message, TaskBody
from townhall.domain.agents import SUPERVISOR_ID
from townhall.store import TownStore
from townhall.testing.process import TownhallProcess
from townhall.testing.seed import TownSeed
from tests.support.replicas import assert_task_indexes_consistent, assignments, start_replicas

CLIENTS = 8  # concurrent clients per replica


@pytest.fixture
def replicas(town_dir: Path) -> Iterator[list[TownhallProcess]]:
    procs = start_replicas(town_dir)
    yield procs
    for proc in procs:
        proc.stop()


async def post(client: httpx.AsyncClient, path: str, body: Any = None) -> httpx.Response:
    return await client.post(path, json=body)


def clients(procs: list[TownhallProcess]) -> list[httpx.AsyncClient]:
    """``CLIENTS`` clients per replica, alternating."""
    limits = httpx.Limits(max_connections=CLIENTS)
    pool = [httpx.AsyncClient(base_url=p.url, timeout=30, limits=limits) for p in procs]
    return [pool[i % len(pool)] for i in range(CLIENTS * len(pool))]


async def close(pool: list[httpx.AsyncClient]) -> None:
    for client in set(pool):
        await client.aclose()


async def test_claims_and_assign_all_from_two_replicas_assign_each_task_once(
        replicas: list[TownhallProcess], sync_redis: redis.Redis, aredis: aioredis.Redis, town_name: str) -> None:
    pool = clients(replicas)
    agents = [f"w{i}" for i in range(4)]
    for name in agents:
        assert (await post(pool[0], "/v1/agents", {"name": name})).status_code == 201
    tasks = [(await post(pool[1], "/v1/backlog", {"description": f"job {i}"})).json()["task_id"] for i in range(30)]

    async def claimer(client: httpx.AsyncClient, seed: int) -> list[tuple[str, str]]:
        won: list[tuple[str, str]] = []
        order = random.Random(seed).sample(tasks, len(tasks))
        for task_id in order:
            agent = agents[hash((seed, task_id)) % 3]
            answer = await post(client, f"/v1/backlog/{task_id}/claim", {"agent": agent})
            assert answer.status_code in (200, 404, 409), answer.text
            if answer.status_code == 200:
                won.append((task_id, answer.json()["agent_id"]))
        return won

    async def assign_all(client: httpx.AsyncClient) -> list[str]:
        answer = await post(client, "/v1/backlog/assign-all", {"agent": agents[3]})
        assert answer.status_code in (200, 404, 409), answer.text
        return answer.json()["tasks"] if answer.status_code == 200 else []

    results = await asyncio.gather(*(claimer(c, i) for i, c in enumerate(pool)),
                                   *(assign_all(c) for c in pool[:4]))
    await close(pool)
    claimed = [task for won in results[:len(pool)] for task, _ in won]  # type: ignore[misc]
    assigned_all = [task for batch in results[len(pool):] for task in batch]  # type: ignore[union-attr]
    winners = Counter(claimed + assigned_all)
    assert sorted(winners) == sorted(tasks) and set(winners.values()) == {1}, winners
    assert await TownStore(aredis, town_name).backlog.length() == 0
    states = assert_task_indexes_consistent(sync_redis, town_name)
    assert {states[t] for t in tasks} == {"assigned"}
    assert assignments(sync_redis, town_name) == Counter({t: 1 for t in tasks})


async def test_reclaim_prune_and_spawn_from_two_replicas_lose_and_double_nothing(
        replicas: list[TownhallProcess], seed: TownSeed, sync_redis: redis.Redis, town_name: str) -> None:
    dead = [await seed.agent(f"dead{i}", AgentState.STOPPED) for i in range(4)]
    work = [await seed.assigned_task(agent, f"left by {agent.name} #{n}") for agent in dead for n in range(5)]
    notes = [f"note for {agent.name} #{n}" for agent in dead for n in range(5)]
    for agent in dead:
        for note in notes:
            if note.startswith(f"note for {agent.name} "):
                await seed.store.messages.send(Message.new(SUPERVISOR_ID, agent.id, TaskBody(description=note)))
    plain = [await seed.agent(f"idle{i}", AgentState.IDLE) for i in range(2)]
    pool = clients(replicas)

    async def reclaimer(client: httpx.AsyncClient) -> int:
        total = 0
        for _ in range(3):
            answer = await post(client, "/v1/reclaim", {"to_backlog": True})
            assert answer.status_code == 200, answer.text
            total += answer.json()["reclaimed"]
        return total

    async def pruner(client: httpx.AsyncClient) -> int:
        answer = await post(client, "/v1/agents/prune", {})
        assert answer.status_code == 200, answer.text
        return answer.json()["removed"]

    async def spawner(client: httpx.AsyncClient, n: int) -> list[int]:
        # Everyone tries every name: each name is created once; the town's max_agents (10) holds.
        return [(await post(client, "/v1/agents", {"name": f"new{(n + i) % 6}"})).status_code for i in range(6)]

    results = await asyncio.gather(*(reclaimer(c) for c in pool[:6]), *(pruner(c) for c in pool[6:10]),
                                   *(spawner(c, i) for i, c in enumerate(pool[10:])))
    await close(pool)
    reclaimed = sum(results[:6])  # type: ignore[arg-type]
    pruned = sum(results[6:10])  # type: ignore[arg-type]
    spawned = [code for codes in results[10:] for code in codes]  # type: ignore[union-attr]
    assert set(spawned) <= {201, 409} and spawned.count(201) == 6, spawned
    assert pruned == len(dead)  # each dead agent pruned once, the live ones kept
    # Work of an agent pruned before it was reclaimed went with its mailbox (prune's contract); its
    # record still names the agent, so the orphan sweep brings it back. Nothing is doubled on the way.
    async with httpx.AsyncClient(base_url=replicas[0].url, timeout=30) as client:
        orphans = (await post(client, "/v1/reclaim/orphan-tasks", {"action": "to_backlog"})).json()
        backlog = (await client.get("/v1/backlog")).json()["backlog"]
        names = sorted(a["name"] for a in (await client.get("/v1/agents")).json()["agents"])
    in_backlog = Counter(entry["task_id"] for entry in backlog if not entry["description"].startswith("note"))
    assert in_backlog == Counter({t.id: 1 for t in work}), (in_backlog, reclaimed, orphans)
    # A plain task message becomes a new backlog task once; one whose agent was pruned first is gone.
    made = Counter(entry["description"] for entry in backlog if entry["description"].startswith("note"))
    assert set(made) <= set(notes) and set(made.values()) <= {1}, made
    assert reclaimed + orphans["count"] == len(work) + len(made)
    states = assert_task_indexes_consistent(sync_redis, town_name)
    assert {states[t.id] for t in work} == {"pending"}
    assert not assignments(sync_redis, town_name)
    assert names == sorted([a.name for a in plain] + [f"new{i}" for i in range(6)])


async def test_a_replica_starting_while_the_other_serves_under_load_corrupts_nothing(
        town_dir: Path, sync_redis: redis.Redis, aredis: aioredis.Redis, town_name: str) -> None:
    [serving] = start_replicas(town_dir, 1)
    starting: TownhallProcess | None = None
    pool = [httpx.AsyncClient(base_url=serving.url, timeout=30) for _ in range(CLIENTS)]
    try:
        for name in ("a", "b"):
            assert (await post(pool[0], "/v1/agents", {"name": name})).status_code == 201
        stop = asyncio.Event()

        async def load(client: httpx.AsyncClient, n: int) -> int:
            """Create, claim, complete and delete tasks until told to stop."""
            done = 0
            rng = random.Random(n)
            while not stop.is_set():
                task_id = (await post(client, "/v1/backlog", {"description": f"load {n}/{done}"})).json()["task_id"]
                step = rng.random()
                if step < 0.25:
                    assert (await client.delete(f"/v1/backlog/{task_id}")).status_code == 200
                else:
                    claim = await post(client, f"/v1/backlog/{task_id}/claim", {"agent": rng.choice("ab")})
                    assert claim.status_code == 200, claim.text
                    if step < 0.75:
                        finish = await post(client, f"/v1/tasks/{task_id}/complete", {"result": "ok"})
                        assert finish.status_code == 200, finish.text
                done += 1
            return done

        async def reconcile_meanwhile() -> None:
            # A second replica starting runs this very reconcile; run it again and again meanwhile
            # (and start a real replica once) while the load goes on.
            nonlocal starting
            store = TownStore(aredis, town_name)
            await asyncio.sleep(0)  # let the load begin
            starting = TownhallProcess(town_dir).start(wait=False)
            for _ in range(6):
                await store.reconcile()
            await asyncio.to_thread(starting.wait_healthy, 120)
            await store.reconcile()
            stop.set()

        results = await asyncio.gather(*(load(c, i) for i, c in enumerate(pool)), reconcile_meanwhile())
        assert sum(results[:-1]) > 0  # type: ignore[arg-type]
        assert "indexes reconciled" in starting.output() if starting else False
    finally:
        for client in pool:
            await client.aclose()
        if starting is not None:
            starting.stop()
        serving.stop()
    states = assert_task_indexes_consistent(sync_redis, town_name)
    assert states and set(states.values()) <= {"assigned", "completed"}
    store = TownStore(aredis, town_name)
    assert await store.backlog.length() == 0
    assert await store.tasks.completed_total() == Counter(states.values())["completed"]
