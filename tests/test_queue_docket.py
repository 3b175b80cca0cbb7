"""Docket stream primitives (reference §11.2 #16) and the streams backend's service side (§4.1)."""

from __future__ import annotations

import redis.asyncio as aioredis

from townhall.builtin.queue_streams import StreamsQueue
from townhall.domain import Task
from townhall.keys import DOCKET_GROUP
from townhall.store import TownStore


async def test_group_creation_is_idempotent(aredis: aioredis.Redis, town_name: str) -> None:
    docket = TownStore(aredis, town_name).docket
    await docket.ensure_group()
    await docket.ensure_group()
    groups = await aredis.xinfo_groups(docket.key)
    assert [g["name"] for g in groups] == [DOCKET_GROUP]


async def test_add_read_ack_and_two_consumers(aredis: aioredis.Redis, town_name: str) -> None:
    docket = TownStore(aredis, town_name).docket
    await docket.ensure_group()
    assert await docket.read_new("worker-1", block_ms=None) == []
    first = await docket.add("11111111-1111-1111-1111-111111111111", "first")
    second = await docket.add("22222222-2222-2222-2222-222222222222", "second")
    assert "-" in first and first < second
    assert await docket.length() == 2

    [got] = await docket.read_new("worker-1", block_ms=None)
    assert got.entry_id == first
    assert set(got.fields) == {"task_id", "type", "message", "priority", "from", "to", "timestamp"}
    assert got.fields["type"] == "task_assign" and got.fields["message"] == "first"
    [other] = await docket.read_new("worker-2", block_ms=None)
    assert other.entry_id == second  # two consumers get different entries

    assert await docket.pending_count() == 2
    assert await docket.ack(first) == 1
    assert await docket.pending_count() == 1
    assert await docket.length() == 2  # acked entries stay until trimmed


async def test_measure_lag_pending_and_fallbacks(aredis: aioredis.Redis, town_name: str) -> None:
    store = TownStore(aredis, town_name)
    queue = StreamsQueue(store)
    depth = await queue.measure()
    assert (depth.unread, depth.in_flight) == (0, 0)  # no stream: 0, not an error

    await aredis.xadd(store.keys.docket, {"task_id": "x"})  # stream without the group
    depth = await queue.measure()
    assert (depth.unread, depth.in_flight) == (1, 0)  # NOGROUP → XLEN, pending 0

    await store.docket.ensure_group()
    await store.docket.add("33333333-3333-3333-3333-333333333333", "y")
    await store.docket.read_new("w", block_ms=None)
    depth = await queue.measure()
    assert (depth.unread, depth.in_flight) == (1, 1)


async def test_enqueue_keeps_the_backlog_catalogue(aredis: aioredis.Redis, town_name: str) -> None:
    store = TownStore(aredis, town_name)
    queue = StreamsQueue(store)
    task = await store.tasks.create(Task.new("write docs"))
    await queue.enqueue(task.id)
    assert await store.backlog.list() == [task.id]
    [entry] = await store.docket.read_new("w", block_ms=None)
    assert entry.task_id == task.id and entry.fields["message"] == "write docs"
    assert await queue.withdraw(task.id) is True
    assert await store.backlog.list() == []
    assert await queue.withdraw(task.id) is False


async def test_blocking_read_wakes_on_add(aredis: aioredis.Redis, redis_url: str, town_name: str) -> None:
    import asyncio

    store = TownStore(aredis, town_name)
    await store.docket.ensure_group()
    blocking = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=None)
    try:
        reader = asyncio.create_task(store.docket.read_new("w", block_ms=10_000, client=blocking))
        await asyncio.sleep(0.05)
        entry_id = await store.docket.add("44444444-4444-4444-4444-444444444444", "z")
        got = await asyncio.wait_for(reader, 5)
        assert [e.entry_id for e in got] == [entry_id]
    finally:
        await blocking.aclose()


async def test_autoclaim_touch_and_safe_trim(aredis: aioredis.Redis, town_name: str) -> None:
    docket = TownStore(aredis, town_name).docket
    await docket.ensure_group()
    ids = [await docket.add(f"0000000{i}-0000-0000-0000-000000000000", str(i)) for i in range(4)]
    [a] = await docket.read_new("dead", block_ms=None)
    [b] = await docket.read_new("alive", block_ms=None)
    await docket.ack(b.entry_id)  # entry 1 done; entry 0 still pending with "dead"
    # Nothing below the oldest pending entry may go; entry 0 is pending so nothing is trimmed.
    assert await docket.trim_delivered() == 0
    assert await docket.claim_idle("rescuer", min_idle_ms=60_000) == []
    [stolen] = await docket.claim_idle("rescuer", min_idle_ms=0)
    assert stolen.entry_id == a.entry_id and await docket.owner(a.entry_id) == "rescuer"
    assert await docket.touch("rescuer", a.entry_id) is True
    await docket.ack(a.entry_id)
    assert await docket.touch("rescuer", a.entry_id) is False
    # Entries 0 and 1 are acked, 2 and 3 unread: exactly two are trimmed.
    assert await docket.trim_delivered() == 2
    assert await docket.length() == 2
    rest = await docket.read_new("alive", block_ms=None, count=10)
    assert [e.entry_id for e in rest] == ids[2:]
