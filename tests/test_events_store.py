"""The town event stream as the services write it (issue 13 item 3): every state change is announced in
the same step, entries of other tools are read leniently, the stream is trimmed, and a scaling
recommendation change is announced once. The HTTP side is tests/test_events_http.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from tests.support.services import town_services
from townhall.domain import EventFilter, EventRecord, TownEvent
from townhall.domain_errors import AgentNotFound, InvalidInput
from townhall.services.event_feed import Ended, FeedItem, Subscription
from townhall.services.scaling import scaling_signal
from townhall.services.town import TownServices
from townhall.store import TownStore


@pytest.fixture
async def services(tmp_path: Path, town_name: str, redis_url: str, aredis) -> TownServices:
    return town_services(tmp_path, town_name, redis_url, aredis, "[townhall.events]\nretention = 100\n")


async def events(services: TownServices) -> list[EventRecord]:
    return await services.store.events.after("0-0", 10_000)


def kinds(records: list[EventRecord], task_id: str | None = None) -> list[str]:
    return [r.event_type for r in records if task_id is None or r.task_id == task_id]


async def test_a_task_through_the_worker_path_announces_each_state(services: TownServices) -> None:
    agent = await services.agents.spawn("w1", cli="test-cli", launch=False)
    done = await services.tasks.assign("w1", "write the docs")
    await services.lifecycle.begin(agent.id, done.task.id, cli="test-cli")
    await services.lifecycle.settle(agent.id, done.task.id, None, "all written")
    failing = await services.tasks.assign("w1", "this one fails")
    await services.lifecycle.begin(agent.id, failing.task.id, cli="test-cli")
    await services.lifecycle.settle(agent.id, failing.task.id, "exit status 3", "")
    await services.lifecycle.end_round(agent.id, 2, failing.task.id, "exit status 3")

    records = await events(services)
    assert kinds(records, done.task.id) == ["task_created", "task_assigned", "task_started", "task_completed"]
    assert kinds(records, failing.task.id) == ["task_created", "task_assigned", "task_started", "task_failed"]
    completed = next(r for r in records if r.event_type == "task_completed")
    assert (completed.agent_id, completed.old_state, completed.new_state) == (agent.id, "running", "completed")
    changes = [(r.old_state, r.new_state) for r in records if r.event_type == "agent_state_changed"]
    assert changes == [("starting", "working"), ("working", "idle")]
    assert records[0].event_type == "agent_created" and records[0].agent_id == agent.id
    # ids are the stream's, increasing; each entry is in the original's shape (event_type + data JSON)
    assert [r.id for r in records] == sorted({r.id for r in records}, key=lambda i: tuple(map(int, i.split("-"))))
    raw = await services.store.redis.xrange(services.store.keys.events, count=1)
    stored = msgspec.json.decode(raw[0][1]["data"], type=TownEvent)
    assert raw[0][1]["event_type"] == stored.event_type == "agent_created" and stored.timestamp.tzinfo is not None


async def test_backlog_claim_requeue_delete_and_messages(services: TownServices) -> None:
    await services.agents.spawn("w1", cli="test-cli", launch=False)
    kept = await services.backlog.add("claimed later")
    dropped = await services.backlog.add("removed")
    await services.backlog.claim(kept.id, "w1")
    await services.backlog.delete(dropped.id)
    sent = await services.messages.send("w1", "hello there", kind="info")

    records = await events(services)
    assert kinds(records, kept.id) == ["task_created", "task_assigned"]
    assert kinds(records, dropped.id) == ["task_created", "task_deleted"]
    message = next(r for r in records if r.event_type == "message_sent")
    assert message.message_id == sent.message_id and message.agent_id == sent.to_agent


async def test_retried_after_a_finished_state_and_agent_removed(services: TownServices) -> None:
    agent = await services.agents.spawn("w1", cli="test-cli", launch=False)
    task = (await services.tasks.assign("w1", "again")).task
    await services.tasks.fail(task.id, "broke")
    from townhall.domain import TaskState

    await services.store.tasks.transition(task.id, TaskState.PENDING, allowed_from=[TaskState.FAILED])
    await services.lifecycle.kill("w1")
    await services.agents.prune()
    records = await events(services)
    assert kinds(records, task.id)[-2:] == ["task_failed", "task_retried"]
    removed = [r for r in records if r.event_type == "agent_removed"]
    assert [(r.agent_id, r.old_state) for r in removed] == [(agent.id, "stopped")]


async def test_work_reclaimed_from_a_dead_agent_is_announced_as_assigned_to_the_new_one(
        services: TownServices) -> None:
    await services.agents.spawn("dead", cli="test-cli", launch=False)
    alive = await services.agents.spawn("alive", cli="test-cli", launch=False)
    task = (await services.tasks.assign("dead", "rescue me")).task
    await services.lifecycle.kill("dead")
    await services.recovery.reclaim(to="alive")
    assigned = [r for r in await events(services) if r.event_type == "task_assigned" and r.task_id == task.id]
    assert [r.agent_id for r in assigned][-1] == alive.id and len(assigned) == 2


async def test_entries_of_other_tools_are_read_leniently(services: TownServices, aredis) -> None:
    key = services.store.keys.events
    upstream = TownEvent(event_type="agent_interrupted", message="paused by ops", agent_id="a1",
                         old_state="Working", new_state="Paused")
    await aredis.xadd(key, {"event_type": upstream.event_type, "data": msgspec.json.encode(upstream).decode()})
    await aredis.xadd(key, {"event_type": "mission_event", "data": "not json at all"})
    await aredis.xadd(key, {"data": '{"event_type": 7, "message": ["odd"], "task_id": "t1"}'})
    await aredis.xadd(key, {"something": "else"})
    first, second, third, fourth = await events(services)
    assert (first.event_type, first.message, first.agent_id, first.new_state) == (
        "agent_interrupted", "paused by ops", "a1", "Paused")
    assert (second.event_type, second.message) == ("mission_event", "not json at all")
    assert (third.event_type, third.task_id, third.message) == ("unknown", "t1", "")
    assert fourth.event_type == "unknown"


async def test_the_stream_is_trimmed_to_the_configured_retention(services: TownServices, aredis) -> None:
    await services.agents.spawn("w1", cli="test-cli", launch=False)
    for i in range(400):
        await services.messages.send("w1", f"m{i}")
    length = await aredis.xlen(services.store.keys.events)
    assert 100 <= length < 400  # MAXLEN ~ 100: trimmed in whole nodes, never below the retention


async def test_a_scaling_recommendation_change_is_announced_once(services: TownServices) -> None:
    async def signal() -> str:
        measured = await scaling_signal(services.store, services.queue, town=services.town.name, max_agents=5,
                                        idle_timeout_secs=300)
        return measured.scaling_recommendation.value

    assert await signal() == "scale_to_zero"
    assert await signal() == "scale_to_zero"
    await services.backlog.add("work to do")
    assert await signal() == "scale_up"
    assert await signal() == "scale_up"
    changes = [(r.old_state, r.new_state) for r in await events(services)
               if r.event_type == "scaling_recommendation_changed"]
    assert changes == [(None, "scale_to_zero"), ("scale_to_zero", "scale_up")]


async def test_filters_are_checked(services: TownServices) -> None:
    agent = await services.agents.spawn("w1", cli="test-cli", launch=False)
    with pytest.raises(InvalidInput) as bad_type:
        await services.events.query(types="task_completed,task_exploded")
    assert bad_type.value.field == "types" and "task_exploded" in bad_type.value.message
    with pytest.raises(InvalidInput) as bad_task:
        await services.events.query(task="nope")
    assert bad_task.value.field == "task"
    with pytest.raises(InvalidInput) as bad_id:
        await services.events.query(after="yesterday")
    assert bad_id.value.field == "Last-Event-ID"
    with pytest.raises(AgentNotFound):
        await services.events.query(agent="nobody")
    query = await services.events.query(agent="w1", types=" task_started , agent_state_changed", after="17-0")
    assert query.filter == EventFilter(agent_id=agent.id, types=frozenset({"task_started", "agent_state_changed"}))
    assert query.after == "17-0"


async def test_recent_history_is_filtered_newest_last(services: TownServices) -> None:
    await services.agents.spawn("w1", cli="test-cli", launch=False)
    await services.agents.spawn("w2", cli="test-cli", launch=False)
    for i in range(5):
        await services.messages.send("w1" if i % 2 else "w2", f"m{i}")
    query = await services.events.query(agent="w1", types="message_sent")
    recent = await services.events.recent(query.filter, 10)
    assert len(recent) == 2 and recent[0].id < recent[1].id


def test_a_subscription_that_is_not_read_holds_at_most_its_buffer() -> None:
    async def scenario() -> None:
        subscription = Subscription(EventFilter(), buffer=50)
        item = FeedItem.of(EventRecord(id="1-0", event_type="message_sent"))
        for _ in range(10_000):
            subscription.offer(item)
        assert subscription.held == 0 and subscription.ended is Ended.OVERFLOW
        assert await subscription.take(0.01) is None

        kept = Subscription(EventFilter(types=frozenset({"task_started"})), buffer=50)
        for _ in range(10_000):
            kept.offer(item)  # filtered out: never held
        assert kept.held == 0 and kept.ended is None
        assert await kept.take(0.01) == []  # nothing came: a heartbeat is due

    asyncio.run(scenario())


async def test_store_retention_default(aredis, town_name: str) -> None:
    store = TownStore(aredis, town_name)
    assert store.events._ctx.event_retention == 10_000
