"""Task records: upstream hash shape, and index/counter maintenance through every transition."""

from __future__ import annotations

import pytest

from townhall.domain import Task, TaskState, utc_now
from townhall.domain.timestamps import epoch_ms, format_json_time
from townhall.store import TaskPatch, TownStore

TASK_ID = "9d4e0000-0000-4000-8000-000000000003"
AGENT_ID = "3b2a0000-0000-4000-8000-000000000002"


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


def upstream_task_hash(**overrides: str) -> dict[str, str]:
    fields = {
        "id": TASK_ID,
        "description": "Add the /health route",
        "state": "assigned",
        "assigned_to": AGENT_ID,
        "created_at": "2026-04-04T18:00:00.123456789+00:00",
        "updated_at": "2026-04-04T18:01:00+00:00",
        "tags": '["backend","api"]',
    }
    fields.update(overrides)
    return fields


async def snapshot(store: TownStore, aredis) -> dict:
    k = store.keys
    return {
        "pending": await aredis.smembers(k.tasks_in_state("pending")),
        "assigned": await aredis.smembers(k.tasks_in_state("assigned")),
        "running": await aredis.smembers(k.tasks_in_state("running")),
        "counts": {s.value: n for s, n in (await store.tasks.counts()).items() if n},
        "total": await store.tasks.completed_total(),
    }


async def test_reads_upstream_hash(store, aredis):
    await aredis.hset(store.keys.task(TASK_ID), mapping=upstream_task_hash())
    task = await store.tasks.get(TASK_ID)
    assert task.state is TaskState.ASSIGNED and task.assigned_to == AGENT_ID
    assert task.tags == ["backend", "api"]
    assert task.started_at is None and task.result is None and task.parent_id is None


async def test_in_flight_alias_and_unknown_state(store, aredis):
    await aredis.hset(store.keys.task(TASK_ID), mapping=upstream_task_hash(state="in_flight"))
    assert (await store.tasks.get(TASK_ID)).state is TaskState.RUNNING
    await aredis.hset(store.keys.task(TASK_ID), mapping=upstream_task_hash(state="mystery", tags="not json"))
    task = await store.tasks.get(TASK_ID)
    assert task.state is TaskState.PENDING and task.tags == []


async def test_save_writes_upstream_encoding(store, aredis):
    task = Task.new("write docs", tags=["docs"])
    await store.tasks.create(task)
    raw = await aredis.hgetall(store.keys.task(task.id))
    assert raw["state"] == "pending" and raw["tags"] == '["docs"]'
    assert raw["created_at"].endswith("+00:00")
    assert not {"assigned_to", "started_at", "completed_at", "result", "parent_id"} & set(raw)
    assert await store.tasks.get(task.id) == task


async def test_cleared_optionals_are_deleted_in_the_same_write(store, aredis):
    task = Task.new("x", state=TaskState.RUNNING, assigned_to=AGENT_ID)
    task.started_at = utc_now()
    await store.tasks.create(task)
    old = await store.tasks.transition(task.id, TaskState.PENDING, TaskPatch(assigned_to=None, started_at=None))
    assert old is TaskState.RUNNING
    raw = await aredis.hgetall(store.keys.task(task.id))
    assert "assigned_to" not in raw and "started_at" not in raw and raw["state"] == "pending"


async def test_indexes_follow_every_transition(store, aredis):
    task = await store.tasks.create(Task.new("x"))
    assert await snapshot(store, aredis) == {
        "pending": {task.id}, "assigned": set(), "running": set(), "counts": {"pending": 1}, "total": 0
    }
    await store.tasks.transition(task.id, TaskState.ASSIGNED, TaskPatch(assigned_to=AGENT_ID))
    assert (await snapshot(store, aredis))["assigned"] == {task.id}
    await store.tasks.transition(task.id, TaskState.RUNNING, TaskPatch(started_at=utc_now()))
    snap = await snapshot(store, aredis)
    assert snap["running"] == {task.id} and snap["pending"] == snap["assigned"] == set()
    assert snap["counts"] == {"running": 1}
    await store.tasks.transition(task.id, TaskState.COMPLETED, TaskPatch(result="ok", completed_at=utc_now()))
    assert await snapshot(store, aredis) == {
        "pending": set(), "assigned": set(), "running": set(), "counts": {"completed": 1}, "total": 1
    }
    assert await store.tasks.delete(task.id)
    assert await snapshot(store, aredis) == {
        "pending": set(), "assigned": set(), "running": set(), "counts": {}, "total": 1
    }
    assert not await store.tasks.delete(task.id)


async def test_completed_total_counts_entries_into_completed_only(store, aredis):
    task = await store.tasks.create(Task.new("x"))
    await store.tasks.transition(task.id, TaskState.COMPLETED)
    await store.tasks.transition(task.id, TaskState.COMPLETED)  # already completed: no second count
    task2 = await store.tasks.create(Task.new("y", state=TaskState.COMPLETED))
    assert await store.tasks.completed_total() == 2
    # Re-opened and completed again: counted again, as a real counter of completions.
    await store.tasks.transition(task.id, TaskState.PENDING)
    await store.tasks.transition(task.id, TaskState.COMPLETED)
    await store.tasks.delete(task.id)
    await store.tasks.delete(task2.id)
    assert await store.tasks.completed_total() == 3
    assert (await store.tasks.counts())[TaskState.COMPLETED] == 0


async def test_transition_compare_and_set(store):
    task = await store.tasks.create(Task.new("x", state=TaskState.ASSIGNED, assigned_to=AGENT_ID))
    open_states = [TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING]
    assert await store.tasks.transition(task.id, TaskState.COMPLETED, allowed_from=open_states) is TaskState.ASSIGNED
    assert await store.tasks.transition(task.id, TaskState.COMPLETED, allowed_from=open_states) is None
    assert await store.tasks.transition("missing-id", TaskState.COMPLETED) is None
    assert await store.tasks.get("missing-id") is None  # transition never creates a record


async def test_transition_without_state_change_keeps_state_and_indexes(store, aredis):
    task = await store.tasks.create(Task.new("x"))
    assert await store.tasks.transition(task.id, None, TaskPatch(description="y")) is TaskState.PENDING
    got = await store.tasks.get(task.id)
    assert got.description == "y" and got.state is TaskState.PENDING
    assert (await snapshot(store, aredis))["counts"] == {"pending": 1}


async def test_in_state_repairs_entries_made_stale_by_other_tools(store, aredis):
    a = await store.tasks.create(Task.new("a", state=TaskState.ASSIGNED))
    b = await store.tasks.create(Task.new("b", state=TaskState.ASSIGNED))
    c = await store.tasks.create(Task.new("c", state=TaskState.ASSIGNED))
    # The original tt completes one and deletes another without touching our indexes.
    await aredis.hset(store.keys.task(a.id), "state", "completed")
    await aredis.delete(store.keys.task(b.id))
    assert [t.id for t in await store.tasks.in_state(TaskState.ASSIGNED)] == [c.id]
    snap = await snapshot(store, aredis)
    assert snap["assigned"] == {c.id}
    assert snap["counts"] == {"assigned": 1, "completed": 1}
    assert snap["total"] == 1


async def test_terminal_states_are_not_indexed(store):
    with pytest.raises(ValueError):
        await store.tasks.ids_in_state(TaskState.COMPLETED)


async def filed_and_announced(store: TownStore, aredis, task: Task) -> dict:
    """Where ``task`` is filed (history score, state, agent and tag sets, counts) and what the town
    stream says about it, with its id left out so two tasks can be compared."""
    k = store.keys
    events = [e for e in await store.events.before(None, 100) if e.task_id == task.id]
    return {
        "score": await aredis.zscore(k.history, task.id),
        "id_index": await aredis.zscore(k.task_ids, task.id),
        "state_set": [s.value for s in TaskState if await aredis.zscore(k.history_state(s.value), task.id)],
        "agent_set": await aredis.zscore(k.history_agent(AGENT_ID), task.id),
        "tag_sets": {t: await aredis.zscore(k.history_tag(t), task.id) for t in ("api", "docs")},
        "open_set": await aredis.sismember(k.tasks_in_state(task.state.value), task.id),
        "events": [(e.event_type, e.old_state, e.new_state, e.agent_id, e.timestamp) for e in events],
    }


async def test_a_task_created_with_its_pushes_is_filed_and_announced_as_a_saved_one(store, aredis):
    # create_and_push is told the history score, assignee, tags and event time instead of reading
    # them back; what it leaves in Redis must be what the general write (save) leaves.
    made = []
    for _ in range(2):
        task = Task.new("x", state=TaskState.ASSIGNED, assigned_to=AGENT_ID, tags=["api", "docs"])
        task.created_at = task.created_at.replace(microsecond=123456)
        task.updated_at = task.created_at
        made.append(task)
    saved, pushed = made
    await store.tasks.save(saved)
    await store.tasks.create_and_push(pushed, [(store.keys.inbox(AGENT_ID), "m")], wake=(store.keys.prefix + "wake:t", 1))
    await store.tasks.create_and_push(Task.new("y"), [], wake=(store.keys.prefix + "wake:t", 1))
    want, got = await filed_and_announced(store, aredis, saved), await filed_and_announced(store, aredis, pushed)
    assert got["score"] == epoch_ms(pushed.created_at) and got["events"][0][4] == format_json_time(pushed.updated_at)
    assert {**got, "score": 0, "events": [e[:4] for e in got["events"]]} == {
        **want, "score": 0, "events": [e[:4] for e in want["events"]]}
    assert [e[:4] for e in got["events"]] == [("task_created", None, "assigned", AGENT_ID),
                                              ("task_assigned", None, "assigned", AGENT_ID)]
    assert (await snapshot(store, aredis))["counts"] == {"assigned": 2, "pending": 1}
    assert await aredis.lrange(store.keys.inbox(AGENT_ID), 0, -1) == ["m"]
    assert await aredis.lrange(store.keys.prefix + "wake:t", 0, -1) == ["1"]  # trimmed to its cap


async def test_a_task_created_over_another_writers_record_replaces_it(store, aredis):
    await aredis.hset(store.keys.task(TASK_ID), mapping=upstream_task_hash(result="old", state="running"))
    await aredis.sadd(store.keys.tasks_in_state("running"), TASK_ID)
    await aredis.hset(store.keys.task_counts, "running", 1)
    task = Task(id=TASK_ID, description="fresh")
    await store.tasks.create_and_push(task, [(store.keys.backlog, TASK_ID)])
    raw = await aredis.hgetall(store.keys.task(TASK_ID))
    assert raw["state"] == "pending" and "result" not in raw and "assigned_to" not in raw
    assert (await snapshot(store, aredis))["counts"] == {"pending": 1}
    events = [e for e in await store.events.before(None, 10) if e.task_id == TASK_ID]
    assert [(e.event_type, e.old_state, e.new_state) for e in events] == [("task_requeued", "running", "pending")]
