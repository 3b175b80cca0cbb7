"""Startup reconcile: indexes and counters rebuilt from records written by someone else."""

from __future__ import annotations

import uuid

import pytest

from townhall.domain import Agent, Task, TaskState
from townhall.store import TownStore, escape_glob


def uid() -> str:
    return str(uuid.uuid4())


async def write_raw_agent(aredis, store: TownStore, agent_id: str, state: str = "idle") -> None:
    await aredis.hset(
        store.keys.agent(agent_id),
        mapping={"id": agent_id, "name": "w", "state": state, "cli": "claude",
                 "created_at": "2026-04-04T18:00:00+00:00"},
    )


async def write_raw_task(aredis, store: TownStore, task_id: str, state: str) -> None:
    await aredis.hset(
        store.keys.task(task_id),
        mapping={"id": task_id, "description": "d", "state": state, "tags": "[]",
                 "created_at": "2026-04-04T18:00:00+00:00", "updated_at": "2026-04-04T18:00:00+00:00"},
    )


def test_escape_glob():
    assert escape_glob("tt:a*b?c[d]e\\:") == "tt:a\\*b\\?c\\[d\\]e\\\\:"


async def test_rebuilds_everything_from_raw_records(aredis, town_name):
    store = TownStore(aredis, town_name)
    agents = [uid(), uid()]
    for a in agents:
        await write_raw_agent(aredis, store, a)
    states = ["pending", "pending", "assigned", "in_flight", "completed", "completed", "cancelled", "bogus"]
    tasks = {uid(): s for s in states}
    for t, s in tasks.items():
        await write_raw_task(aredis, store, t, s)
    mission = uid()
    await aredis.set(store.keys.mission(mission), '{"id":"%s","state":"running"}' % mission)
    await aredis.hset(store.keys.mission_sub(mission, "work"), "w", "{}")
    # Stale entries of ours that must disappear.
    ghost = uid()
    await aredis.sadd(store.keys.agent_index, ghost)
    await aredis.sadd(store.keys.tasks_in_state("running"), ghost)
    await aredis.hset(store.keys.task_counts, "failed", 9)

    report = await store.reconcile()

    assert (report.agents, report.tasks, report.missions) == (2, 8, 1)
    assert {a.id for a in await store.agents.list_all()} == set(agents)
    by_state = lambda wanted: {t for t, s in tasks.items() if s in wanted}  # noqa: E731
    assert await store.tasks.ids_in_state(TaskState.PENDING) == by_state({"pending", "bogus"})
    assert await store.tasks.ids_in_state(TaskState.ASSIGNED) == by_state({"assigned"})
    assert await store.tasks.ids_in_state(TaskState.RUNNING) == by_state({"in_flight"})
    counts = await store.tasks.counts()
    assert counts == {TaskState.PENDING: 3, TaskState.ASSIGNED: 1, TaskState.RUNNING: 1,
                      TaskState.COMPLETED: 2, TaskState.FAILED: 0, TaskState.CANCELLED: 1}
    assert await store.tasks.completed_total() == 2
    assert [m.id for m in await store.missions.list()] == [mission]
    leftovers = [k async for k in aredis.scan_iter(match=escape_glob(store.keys.prefix) + "*rebuild*")]
    assert leftovers == []
    assert await aredis.exists(store.keys.reconciled_at)


async def test_completed_total_never_goes_down(aredis, town_name):
    store = TownStore(aredis, town_name)
    await aredis.set(store.keys.tasks_completed_total, 50)
    await write_raw_task(aredis, store, uid(), "completed")
    assert (await store.reconcile()).completed_total == 50
    assert await store.tasks.completed_total() == 50


async def test_writes_after_reconcile_keep_counts_consistent(aredis, town_name):
    store = TownStore(aredis, town_name)
    t = uid()
    await write_raw_task(aredis, store, t, "assigned")
    await store.reconcile()
    await store.tasks.transition(t, TaskState.COMPLETED)
    counts = await store.tasks.counts()
    assert (counts[TaskState.ASSIGNED], counts[TaskState.COMPLETED]) == (0, 1)
    assert await store.tasks.completed_total() == 1


async def test_legacy_string_records_are_skipped(aredis, town_name):
    store = TownStore(aredis, town_name)
    legacy_agent, legacy_task, good = uid(), uid(), uid()
    await aredis.set(store.keys.agent(legacy_agent), '{"id":"%s","name":"old"}' % legacy_agent)
    await aredis.set(store.keys.task(legacy_task), '{"id":"x"}')
    await write_raw_agent(aredis, store, good)
    report = await store.reconcile()
    assert report.agents == 1 and report.tasks == 0
    assert set(report.skipped_keys) == {store.keys.agent(legacy_agent), store.keys.task(legacy_task)}
    assert [a.id for a in await store.agents.list_all()] == [good]


@pytest.mark.parametrize("suffix", ["*", "?x", "[ab]", "\\"])
async def test_glob_characters_in_town_name(aredis, town_name, suffix):
    name = town_name + suffix
    store = TownStore(aredis, name)
    # Neighbours a naive pattern would also match: "{name}" glob-matches these town names.
    neighbours = [TownStore(aredis, town_name + "zz"), TownStore(aredis, town_name + "a"),
                  TownStore(aredis, name + ":sub")]
    mine = await store.agents.create(Agent.new("mine", "claude"))
    await write_raw_task(aredis, store, uid(), "pending")
    for other in neighbours:
        await write_raw_agent(aredis, other, uid())
        await write_raw_task(aredis, other, uid(), "completed")
    await aredis.delete(store.keys.agent_index)
    report = await store.reconcile()
    assert (report.agents, report.tasks) == (1, 1)
    assert [a.id for a in await store.agents.list_all()] == [mine.id]
    assert await store.tasks.completed_total() == 0
    task = await store.tasks.create(Task.new("after"))
    assert task.id in await store.tasks.ids_in_state(TaskState.PENDING)
