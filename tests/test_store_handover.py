"""The handover scripts: record and message (or backlog entry) move together, or not at all."""

from __future__ import annotations

from townhall.builtin.queue_lists import ListsQueue
from townhall.domain import TaskState
from townhall.queues import task_assign_message
from townhall.store import LeftWith
from townhall.store.json_codec import encode_message
from townhall.testing.seed import TownSeed


async def test_reassign_entry_moves_message_and_record_in_one_step(seed: TownSeed) -> None:
    store = seed.store
    dead, alive = await seed.agent("dead"), await seed.agent("alive")
    task = await seed.assigned_task(dead)
    [entry] = await store.messages.peek(dead.id)
    assert await store.handover.reassign_entry(task.id, entry, from_agent=dead.id, to_agent=alive.id)
    record = await store.tasks.get(task.id)
    assert record is not None and (record.state, record.assigned_to) == (TaskState.ASSIGNED, alive.id)
    [moved] = await store.messages.peek(alive.id)
    assert moved.message is not None and moved.message.to == alive.id and moved.message.id == entry.message.id  # type: ignore[union-attr]
    assert await store.messages.inbox_len(dead.id) == 0
    # The entry is gone now: a second (concurrent) reclaim moves nothing and leaves the record alone.
    other = await seed.agent("other")
    assert not await store.handover.reassign_entry(task.id, entry, from_agent=dead.id, to_agent=other.id)
    assert (await store.tasks.get(task.id)).assigned_to == alive.id  # type: ignore[union-attr]
    assert await store.messages.inbox_len(other.id) == 0


async def test_reassign_entry_keeps_the_placement_by_priority(seed: TownSeed) -> None:
    store = seed.store
    dead, alive = await seed.agent("dead"), await seed.agent("alive")
    first = await seed.assigned_task(alive, "already there")
    task = await seed.assigned_task(dead)
    [entry] = await store.messages.peek(dead.id)
    assert await store.handover.reassign_entry(task.id, entry, from_agent=dead.id, to_agent=alive.id)
    order = [e.message.body.task_id for e in await store.messages.peek(alive.id)]  # type: ignore[union-attr]
    assert order == [first.id, task.id]  # normal priority: to the back


async def test_enqueue_sets_pending_and_lists_once(seed: TownSeed) -> None:
    store, queue = seed.store, ListsQueue(seed.store)
    agent = await seed.agent("a")
    task = await seed.task(TaskState.RUNNING, assigned_to=agent.id)
    assert await queue.enqueue(task.id)
    assert await queue.enqueue(task.id)  # again: still one backlog entry
    record = await store.tasks.get(task.id)
    assert record is not None and (record.state, record.assigned_to, record.started_at) == (TaskState.PENDING, None, None)
    assert await store.backlog.list() == [task.id]
    counts = await store.tasks.counts()
    assert (counts[TaskState.PENDING], counts[TaskState.RUNNING]) == (1, 0)


async def test_enqueue_refuses_finished_and_missing_tasks(seed: TownSeed) -> None:
    store, queue = seed.store, ListsQueue(seed.store)
    done = await seed.task(TaskState.COMPLETED)
    assert not await queue.enqueue(done.id)
    assert not await queue.enqueue("0b7e8f0e-51f4-4f6e-9c8e-0d1b2a3c4d5e")
    assert await store.backlog.list() == []
    assert (await store.tasks.get(done.id)).state is TaskState.COMPLETED  # type: ignore[union-attr]


async def test_leave_with_assignee_delivers_only_when_it_holds_nothing(seed: TownSeed) -> None:
    store = seed.store
    me, owner = await seed.agent("me"), await seed.agent("owner")
    task = await seed.task(TaskState.ASSIGNED, assigned_to=owner.id)
    message = task_assign_message(task.id, me.id)
    done, named = await store.handover.leave_with_assignee(task.id, me.id, encode_message(message))
    assert (done, named) == (LeftWith.DELIVERED, owner.id)
    done, _ = await store.handover.leave_with_assignee(task.id, me.id, encode_message(message))
    assert done is LeftWith.HELD and await store.messages.inbox_len(owner.id) == 1
