"""Listings in one round trip (store/overview.py): what each script returns matches the records, odd
keys written by other tools read as they did with one call per key."""

from __future__ import annotations

import msgspec
import pytest

from bench.rtt import counting_round_trips
from townhall.domain import Agent, AgentState, Task, TaskState
from townhall.queues import task_assign_message
from townhall.store import AgentPatch, ListedAgent, TownStore


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


async def test_listing_with_lengths_current_task_and_activity_in_one_round_trip(store, aredis):
    first = await store.agents.create(Agent.new("first", "claude"))
    second = await store.agents.create(Agent.new("second", "claude"))
    task = await store.tasks.create(Task.new("the work", state=TaskState.RUNNING, assigned_to=second.id))
    await store.agents.update(second.id, AgentPatch(current_task=task.id, state=AgentState.WORKING))
    await store.messages.send(task_assign_message(task.id, second.id))
    await aredis.rpush(store.keys.urgent(second.id), "not even json")
    for line in ("one", "two", "three", "four", "five", "six"):
        await store.agents.add_activity(second.id, line)
    await store.overview.lines(lengths=True)  # loads the script

    for deep in (False, True):
        with counting_round_trips() as trips:
            lines = await store.overview.lines(lengths=True, deep=deep)
        assert trips.count == 1
        assert [line.agent.id for line in lines] == [first.id, second.id]  # oldest first
        plain, busy = lines
        assert (plain.lengths.inbox, plain.lengths.urgent, plain.current_scope, plain.current_task,
                plain.activity) == (0, 0, None, None, [])
        assert (busy.lengths.inbox, busy.lengths.urgent, busy.current_scope) == (1, 1, "the work")
        record = await store.agents.get(second.id)
        assert record is not None
        # Every listed field reads as the whole record reads it.
        assert {f: getattr(busy.agent, f) for f in ListedAgent.__struct_fields__} == \
            {f: getattr(record, f) for f in ListedAgent.__struct_fields__}
        if deep:
            assert busy.current_task == await store.tasks.get(task.id)
            assert busy.activity == ["six", "five", "four", "three", "two"]
        else:
            assert (busy.current_task, busy.activity) == (None, [])

    bare = await store.overview.lines()
    assert [(line.lengths.inbox, line.current_scope) for line in bare] == [(0, None), (0, "the work")]
    # A finished task is no agent's current work, whatever its pointer says.
    await aredis.hset(store.keys.task(task.id), "state", "completed")
    assert [line.current_scope for line in await store.overview.lines(deep=True)] == [None, None]
    assert [line.current_scope for line in await store.overview.lines()] == [None, None]


def test_listed_fields_have_the_records_types():
    # So each is read by the same rules as in the whole record (store/codec.py reads by type).
    record = {f.name: f.type for f in msgspec.structs.fields(Agent)}
    assert {f.name: f.type for f in msgspec.structs.fields(ListedAgent)} == \
        {name: record[name] for name in ListedAgent.__struct_fields__}


async def test_odd_keys_read_as_before(store, aredis):
    kept = await store.agents.create(Agent.new("kept", "claude"))
    gone = await store.agents.create(Agent.new("gone", "claude"))
    odd = await store.agents.create(Agent.new("odd", "claude"))
    blank = await store.agents.create(Agent.new("blank", "claude"))
    await aredis.delete(store.keys.agent(gone.id))
    await aredis.delete(store.keys.agent(odd.id))
    await aredis.set(store.keys.agent(odd.id), "a string, not a hash")  # another tool's mistake
    await aredis.hset(store.keys.agent(blank.id), "id", "")  # a record without an id is no record
    await aredis.set(store.keys.inbox(kept.id), "not a list")
    await store.agents.update(kept.id, AgentPatch(current_task="9d4e0000-0000-4000-8000-000000000003"))
    await aredis.sadd(store.keys.agent_index, "never-written")

    for deep in (False, True):
        lines = await store.overview.lines(lengths=True, deep=deep)
        assert [line.agent.id for line in lines] == [kept.id]
        assert lines[0].lengths.inbox == 0 and lines[0].current_scope is None and lines[0].current_task is None
        # A vanished record leaves the index; an unreadable one stays (it may be repaired).
        assert await aredis.smembers(store.keys.agent_index) == {kept.id, odd.id, blank.id}
        await aredis.sadd(store.keys.agent_index, gone.id)
    assert [a.id for a in await store.overview.agents()] == [kept.id]
    assert await aredis.smembers(store.keys.agent_index) == {kept.id, odd.id, blank.id}


async def test_backlog_listing(store, aredis):
    first = await store.tasks.create(Task.new("first", tags=["a", "b"]))
    await store.backlog.push(first.id)
    missing = "9d4e0000-0000-4000-8000-00000000000f"
    await store.backlog.push(missing)
    await aredis.rpush(store.keys.backlog, "not-a-uuid")
    odd = "9d4e0000-0000-4000-8000-0000000000aa"
    await aredis.set(store.keys.task(odd), "a string")
    await store.backlog.push(odd)
    bad_tags = await store.tasks.create(Task.new("bad tags"))
    await aredis.hset(store.keys.task(bad_tags.id), "tags", "{not json")
    await store.backlog.push(bad_tags.id)
    await store.overview.backlog()

    with counting_round_trips() as trips:
        listing = await store.overview.backlog()
    assert trips.count == 1
    assert listing == [(first.id, "first", ["a", "b"]), (missing, None, []), (odd, None, []),
                       (bad_tags.id, "bad tags", [])]


async def test_read_each_keeps_the_readable_ones(store, aredis):
    a, b = store.keys.inbox("a"), store.keys.inbox("b")
    await aredis.rpush(a, "1", "2", "3")
    await aredis.set(b, "not a list")
    ctx = store._ctx
    assert await ctx.read_each("llen", [a, b, store.keys.inbox("c")]) == [3, None, 0]
    assert await ctx.read_each("lrange", [a, b], 0, 1) == [["1", "2"], None]
    await aredis.hset(store.keys.task("t"), mapping={"id": "t", "x": "y"})
    assert await ctx.read_each("hgetall", [store.keys.task("t"), b, store.keys.task("none")]) == \
        [{"id": "t", "x": "y"}, None, {}]
    assert await ctx.read_each("get", [b, a, store.keys.task("none")]) == ["not a list", None, None]
    with pytest.raises(ValueError):
        await ctx.read_each("del", [a])


async def test_census_counts_what_metrics_need_in_one_round_trip(store, aredis):
    idle = await store.agents.create(Agent.new("idle", "claude"))
    busy = await store.agents.create(Agent.new("busy", "claude"))
    also_idle = await store.agents.create(Agent.new("also-idle", "claude"))
    await store.agents.update(idle.id, AgentPatch(state=AgentState.IDLE))
    await store.agents.update(also_idle.id, AgentPatch(state=AgentState.IDLE))
    await store.agents.update(busy.id, AgentPatch(state=AgentState.WORKING))
    for i in range(5):
        await store.messages.send(task_assign_message(f"task-{i}", busy.id))
    await aredis.rpush(store.keys.urgent(busy.id), "one", "two")
    await aredis.rpush(store.keys.urgent(idle.id), "three")
    # A state spelled as an old writer did, and one missing: read as the record reader reads them.
    odd = await store.agents.create(Agent.new("odd", "claude"))
    await aredis.hset(store.keys.agent(odd.id), "state", "Idle")
    stateless = await store.agents.create(Agent.new("stateless", "claude"))
    await aredis.hdel(store.keys.agent(stateless.id), "state")
    # What the full overview leaves out is left out here too: an index entry without a record, a
    # record without an id, a key of another type.
    blank = await store.agents.create(Agent.new("blank", "claude"))
    await aredis.hset(store.keys.agent(blank.id), "id", "")
    await aredis.sadd(store.keys.agent_index, "no-record")
    await aredis.sadd(store.keys.agent_index, "wrong-type")
    await aredis.set(store.keys.agent("wrong-type"), "a string")
    await store.overview.census()  # loads the script

    with counting_round_trips() as trips:
        census = await store.overview.census(head=3)
    assert trips.count == 1
    assert census.by_state == {AgentState.IDLE: 3, AgentState.WORKING: 1, AgentState.STARTING: 1}
    assert census.urgent == 3
    # Only agents with mail have a head, and only the first entries of it.
    [(agent_id, name, head)] = census.inbox_heads
    assert (agent_id, name) == (busy.id, "busy")
    assert [e.message.body.task_id for e in head if e.message is not None] == ["task-0", "task-1", "task-2"]
