"""Agent records in Redis: upstream hash shape, partial updates, compare-and-set, delete, index."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from townhall.domain import Agent, AgentState, SpawnMode
from townhall.store import AgentPatch, TownStore

AGENT_ID = "3b2a0000-0000-4000-8000-000000000002"


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


def upstream_agent_hash(agent_id: str = AGENT_ID, **overrides: str) -> dict[str, str]:
    """What tt 0.10 writes for a spawned agent (reference §3.1)."""
    fields = {
        "id": agent_id,
        "name": "backend-1",
        "nickname": "Ruth",
        "role_id": "worker",
        "spawn_mode": "fresh",
        "agent_type": "worker",
        "state": "idle",
        "cli": "claude",
        "current_task": "9d4e0000-0000-4000-8000-000000000003",
        "created_at": "2026-04-04T18:00:00.123456789+00:00",
        "last_heartbeat": "2026-04-04T18:05:00.5+00:00",
        "last_active_at": "2026-04-04T18:04:00+00:00",
        "tasks_completed": "3",
        "rounds_completed": "7",
    }
    fields.update(overrides)
    return fields


async def test_reads_upstream_hash(store, aredis):
    await aredis.hset(store.keys.agent(AGENT_ID), mapping=upstream_agent_hash())
    agent = await store.agents.get(AGENT_ID)
    assert agent is not None
    assert (agent.name, agent.nickname, agent.role_id, agent.cli) == ("backend-1", "Ruth", "worker", "claude")
    assert agent.state is AgentState.IDLE and agent.spawn_mode is SpawnMode.FRESH
    assert agent.created_at == datetime(2026, 4, 4, 18, 0, 0, 123456, tzinfo=timezone.utc)
    assert (agent.tasks_completed, agent.rounds_completed) == (3, 7)
    assert agent.parent_agent_id is None


async def test_tolerates_odd_upstream_values(store, aredis):
    await aredis.hset(
        store.keys.agent(AGENT_ID),
        mapping=upstream_agent_hash(state="hibernating", last_active_at="??", tasks_completed="x"),
    )
    agent = await store.agents.get(AGENT_ID)
    assert agent.state is AgentState.STARTING
    assert agent.last_active_at == agent.created_at
    assert agent.tasks_completed == 0


async def test_hash_without_id_is_not_an_agent(store, aredis):
    await aredis.hset(store.keys.agent(AGENT_ID), mapping={"name": "x"})
    assert await store.agents.get(AGENT_ID) is None


async def test_save_writes_upstream_encoding_and_removes_cleared_fields(store, aredis):
    await aredis.hset(store.keys.agent(AGENT_ID), mapping=upstream_agent_hash())
    agent = await store.agents.get(AGENT_ID)
    agent.current_task = None
    agent.nickname = None
    agent.state = AgentState.WORKING
    await store.agents.save(agent)
    raw = await aredis.hgetall(store.keys.agent(AGENT_ID))
    assert "current_task" not in raw and "nickname" not in raw
    assert raw["state"] == "working"
    assert raw["created_at"] == "2026-04-04T18:00:00.123456+00:00"
    assert raw["tasks_completed"] == "3" and raw["spawn_mode"] == "fresh"
    assert set(raw) == {
        "id", "name", "role_id", "spawn_mode", "agent_type", "state", "cli",
        "created_at", "last_heartbeat", "last_active_at", "tasks_completed", "rounds_completed",
    }
    assert await store.agents.get(AGENT_ID) == agent


async def test_create_indexes_and_lists(store):
    a = await store.agents.create(Agent.new("a", "claude"))
    b = await store.agents.create(Agent.new("b", "claude"))
    assert a.nickname and a.state is AgentState.STARTING
    listed = await store.agents.list_all()
    assert [x.id for x in listed] == [a.id, b.id]
    assert await store.agents.get_many([b.id, "nope", a.id]) == [b, None, a]


async def test_list_drops_index_entries_of_records_deleted_elsewhere(store, aredis):
    a = await store.agents.create(Agent.new("a", "claude"))
    await aredis.delete(store.keys.agent(a.id))
    assert await store.agents.list_all() == []
    assert await aredis.smembers(store.keys.agent_index) == set()


async def test_update_is_partial_and_never_resurrects(store, aredis):
    a = await store.agents.create(Agent.new("a", "claude"))
    assert await store.agents.update(a.id, AgentPatch(current_task="t1", rounds_completed=2))
    got = await store.agents.get(a.id)
    assert (got.current_task, got.rounds_completed, got.name) == ("t1", 2, "a")
    assert await store.agents.update(a.id, AgentPatch(current_task=None))
    assert "current_task" not in await aredis.hgetall(store.keys.agent(a.id))
    await store.agents.delete(a.id)
    assert not await store.agents.update(a.id, AgentPatch(state=AgentState.IDLE))
    assert await store.agents.incr_tasks_completed(a.id) is None
    assert not await aredis.exists(store.keys.agent(a.id))


async def test_transition_is_compare_and_set(store):
    a = await store.agents.create(Agent.new("a", "claude"))
    assert await store.agents.set_state(a.id, AgentState.IDLE, allowed_from=[AgentState.STARTING]) is AgentState.STARTING
    assert await store.agents.set_state(a.id, AgentState.PAUSED, allowed_from=[AgentState.STARTING]) is None
    assert (await store.agents.get(a.id)).state is AgentState.IDLE
    assert await store.agents.set_state(a.id, AgentState.STOPPED, allowed_from=[]) is None
    old = await store.agents.transition(
        a.id, [AgentState.IDLE], AgentPatch(state=AgentState.STOPPED, current_task=None)
    )
    assert old is AgentState.IDLE


async def test_unknown_stored_state_compares_as_starting(store, aredis):
    await aredis.hset(store.keys.agent(AGENT_ID), mapping=upstream_agent_hash(state="Booting"))
    assert await store.agents.set_state(AGENT_ID, AgentState.IDLE, allowed_from=[AgentState.STARTING]) is AgentState.STARTING


async def test_delete_removes_everything_keyed_by_the_agent(store, aredis):
    a = await store.agents.create(Agent.new("a", "claude"))
    k = store.keys
    for key in (k.inbox(a.id), k.urgent(a.id), k.processing(a.id)):
        await aredis.rpush(key, "{}")
    await store.agents.add_activity(a.id, "hello")
    await store.agents.request_stop(a.id)
    assert await store.agents.delete(a.id)
    for key in (k.agent(a.id), k.inbox(a.id), k.urgent(a.id), k.processing(a.id), k.activity(a.id), k.stop(a.id)):
        assert not await aredis.exists(key), key
    assert not await aredis.sismember(k.agent_index, a.id)
    assert not await store.agents.delete(a.id)


async def test_activity_log_and_stop_flag(store, aredis):
    a = await store.agents.create(Agent.new("a", "claude"))
    for i in range(12):
        await store.agents.add_activity(a.id, f"line {i}")
    assert await aredis.llen(store.keys.activity(a.id)) == 10
    assert await store.agents.activity(a.id) == [f"line {i}" for i in (11, 10, 9, 8, 7)]
    assert 0 < await aredis.ttl(store.keys.activity(a.id)) <= 3600
    assert not await store.agents.stop_requested(a.id)
    await store.agents.request_stop(a.id)
    assert await aredis.get(store.keys.stop(a.id)) == "1"
    assert 0 < await aredis.ttl(store.keys.stop(a.id)) <= 3600
    assert await store.agents.stop_requested(a.id)
    await store.agents.clear_stop(a.id)
    assert not await store.agents.stop_requested(a.id)


async def test_counters_and_current_task_pointer(store):
    a = await store.agents.create(Agent.new("a", "claude"))
    assert await store.agents.incr_tasks_completed(a.id) == 1
    await store.agents.update(a.id, AgentPatch(current_task="t1"))
    assert not await store.agents.clear_current_task(a.id, "t2")
    assert await store.agents.clear_current_task(a.id, "t1")
    got = await store.agents.get(a.id)
    assert got.current_task is None and got.tasks_completed == 1
