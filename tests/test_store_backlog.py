"""Backlog list and its atomic claim / assign-all / discard."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from townhall.domain import SUPERVISOR_ID, Message, Task, TaskAssignBody, TaskState
from townhall.store import TownStore
from townhall.store.json_codec import decode_message

AGENT_A = "aaaa0000-0000-4000-8000-00000000000a"
AGENT_B = "bbbb0000-0000-4000-8000-00000000000b"


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


def assign_msg(agent_id: str, task_id: str) -> Message:
    return Message.new(SUPERVISOR_ID, agent_id, TaskAssignBody(task_id=task_id))


async def add(store: TownStore, description: str) -> Task:
    task = await store.tasks.create(Task.new(description))
    await store.backlog.push(task.id)
    return task


async def test_push_list_length_remove(store, aredis):
    t1, t2 = await add(store, "one"), await add(store, "two")
    await aredis.rpush(store.keys.backlog, "not-a-uuid")
    assert await store.backlog.list() == [t1.id, t2.id]
    assert await store.backlog.length() == 3
    assert await store.backlog.remove(t1.id)
    assert not await store.backlog.remove(t1.id)
    assert await store.backlog.list() == [t2.id]


async def test_claim_assigns_and_delivers(store, aredis):
    task = await add(store, "one")
    assert await store.backlog.claim(task.id, AGENT_A, assign_msg(AGENT_A, task.id))
    got = await store.tasks.get(task.id)
    assert got.state is TaskState.ASSIGNED and got.assigned_to == AGENT_A
    assert await store.backlog.list() == []
    inbox = await aredis.lrange(store.keys.inbox(AGENT_A), 0, -1)
    assert decode_message(inbox[0]).body == TaskAssignBody(task_id=task.id)
    assert await store.tasks.ids_in_state(TaskState.ASSIGNED) == {task.id}
    assert await store.tasks.ids_in_state(TaskState.PENDING) == set()
    # Not in the backlog any more: nothing happens.
    assert not await store.backlog.claim(task.id, AGENT_B, assign_msg(AGENT_B, task.id))
    assert await aredis.llen(store.keys.inbox(AGENT_B)) == 0


async def test_claim_without_record_still_delivers_like_upstream(store, aredis):
    orphan = "cccc0000-0000-4000-8000-00000000000c"
    await store.backlog.push(orphan)
    assert await store.backlog.claim(orphan, AGENT_A, assign_msg(AGENT_A, orphan))
    assert await aredis.llen(store.keys.inbox(AGENT_A)) == 1
    assert not await aredis.exists(store.keys.task(orphan))


async def test_concurrent_claims_have_exactly_one_winner(store, redis_url, town_name):
    task = await add(store, "contested")
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(8)]
    try:
        stores = [TownStore(c, town_name) for c in clients]
        agents = [f"{i:04x}0000-0000-4000-8000-000000000000" for i in range(8)]
        results = await asyncio.gather(
            *(s.backlog.claim(task.id, a, assign_msg(a, task.id)) for s, a in zip(stores, agents))
        )
        assert sorted(results) == [False] * 7 + [True]
        winner = agents[results.index(True)]
        assert (await store.tasks.get(task.id)).assigned_to == winner
        lengths = await store.messages.lengths(agents)
        assert sum(v.inbox for v in lengths.values()) == 1 and lengths[winner].inbox == 1
        assert (await store.tasks.counts())[TaskState.ASSIGNED] == 1
    finally:
        for c in clients:
            await c.aclose()


async def test_assign_all_moves_everything_in_order_and_drops_dangling_ids(store, aredis):
    tasks = [await add(store, f"t{i}") for i in range(5)]
    dangling = "dddd0000-0000-4000-8000-00000000000d"
    await aredis.linsert(store.keys.backlog, "AFTER", tasks[1].id, dangling)
    got = await store.backlog.assign_all(AGENT_A, lambda tid: assign_msg(AGENT_A, tid))
    assert got == [t.id for t in tasks]
    assert await store.backlog.length() == 0
    inbox = [decode_message(m).body.task_id for m in await aredis.lrange(store.keys.inbox(AGENT_A), 0, -1)]
    assert inbox == got
    assert await store.tasks.ids_in_state(TaskState.ASSIGNED) == set(got)


async def test_concurrent_assign_all_never_share_a_task(store, redis_url, town_name):
    tasks = [await add(store, f"t{i}") for i in range(40)]
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    try:
        s1, s2 = (TownStore(c, town_name) for c in clients)
        r1, r2 = await asyncio.gather(
            s1.backlog.assign_all(AGENT_A, lambda tid: assign_msg(AGENT_A, tid)),
            s2.backlog.assign_all(AGENT_B, lambda tid: assign_msg(AGENT_B, tid)),
        )
        assert not set(r1) & set(r2)
        assert sorted(r1 + r2) == sorted(t.id for t in tasks)
        lengths = await store.messages.lengths([AGENT_A, AGENT_B])
        assert (lengths[AGENT_A].inbox, lengths[AGENT_B].inbox) == (len(r1), len(r2))
    finally:
        for c in clients:
            await c.aclose()


async def test_discard_removes_backlog_entry_and_record(store, aredis):
    task = await add(store, "one")
    assert await store.backlog.discard(task.id)
    assert not await aredis.exists(store.keys.task(task.id))
    assert await store.backlog.length() == 0
    assert (await store.tasks.counts())[TaskState.PENDING] == 0
    assert await store.tasks.ids_in_state(TaskState.PENDING) == set()
    # Not queued: the record is left alone.
    other = await store.tasks.create(Task.new("not queued"))
    assert not await store.backlog.discard(other.id)
    assert await store.tasks.get(other.id) is not None
