"""Agent, task and message services against a real Redis (reference §11.1 4–9, §11.2 2–9)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.rtt import counting_round_trips
from tests.support.services import TEST_CLI, town_services
from townhall.config import load_town
from townhall.domain import SUPERVISOR_ID, AgentState, TaskState
from townhall.domain_errors import (
    AgentNotFound,
    AmbiguousAgent,
    Conflict,
    InvalidInput,
    TaskNotFound,
)
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices
from townhall.store.processing import WAKE_CAP
from townhall.testing.towns import write_town


@pytest.fixture
async def services(tmp_path: Path, town_name: str, redis_url: str, aredis) -> TownServices:
    return town_services(tmp_path, town_name, redis_url, aredis)


async def test_spawn_record(services: TownServices, sync_redis, town_name: str) -> None:
    agent = await services.agents.spawn("test-worker", cli="test-cli")
    assert agent.name == "test-worker" and agent.cli == "test-cli"
    assert agent.state is AgentState.STARTING and agent.id != SUPERVISOR_ID
    raw = sync_redis.hgetall(f"tt:{town_name}:agent:{agent.id}")
    assert raw["state"] == "starting" and raw["agent_type"] == "worker" and raw["nickname"] == agent.nickname
    assert raw["tasks_completed"] == "0" and raw["rounds_completed"] == "0"
    assert [a.name for a in await services.agents.list()] == ["test-worker"]


async def test_spawn_rejections(services: TownServices) -> None:
    for bad in ["", "   ", "supervisor", " Conductor ", "../etc", "a b"]:
        with pytest.raises(InvalidInput) as err:
            await services.agents.spawn(bad, cli="test-cli")
        assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        await services.agents.spawn("w", cli="rm -rf /")
    assert err.value.field == "cli"
    await services.agents.spawn("conductor-helper", cli="test-cli")  # only the exact names are reserved
    with pytest.raises(Conflict, match="conductor-helper"):
        await services.agents.spawn("Conductor-Helper", cli="test-cli")


async def test_spawn_builtin_and_inferred_cli(services: TownServices) -> None:
    assert (await services.agents.spawn("a1", cli="codex")).cli == "codex"
    assert (await services.agents.spawn("a2", cli="claude --print --dangerously-skip-permissions")).cli == "claude"
    assert (await services.agents.spawn("a3", cli="gh copilot suggest")).cli == "copilot"
    assert (await services.agents.spawn("a4")).cli == "claude"


async def test_max_agents_enforced(tmp_path: Path, town_name: str, redis_url: str, aredis) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url, extra=TEST_CLI)
    toml = tmp_path / "tinytown.toml"
    toml.write_text(toml.read_text().replace("max_agents = 10", "max_agents = 2"))
    svc = build_services(load_town(tmp_path), aredis, load_plugins().registry)
    a = await svc.agents.spawn("w1", cli="test-cli")
    await svc.agents.spawn("w2", cli="test-cli")
    with pytest.raises(Conflict, match="max_agents"):
        await svc.agents.spawn("w3", cli="test-cli")
    await svc.lifecycle.kill(a.id)  # stopped agents do not count
    await svc.agents.spawn("w3", cli="test-cli")


async def test_concurrent_spawns_same_name_one_wins(services: TownServices) -> None:
    results = await asyncio.gather(
        *(services.agents.spawn("dup", cli="test-cli") for _ in range(5)), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))


async def test_supervisor_aliases(services: TownServices) -> None:
    for ref in ["supervisor", "conductor", "Conductor", " SUPERVISOR "]:
        assert (await services.agents.resolve(ref)).id == SUPERVISOR_ID
    await services.messages.send("conductor", "hello boss", kind="info")
    inbox = await services.messages.inbox("supervisor")
    assert inbox.total == 1 and inbox.messages[0].summary == "hello boss" and inbox.messages[0].type == "info"


async def test_references_nickname_short_label(services: TownServices) -> None:
    agent = await services.agents.spawn("piper-agent", cli="test-cli", nickname="Piper", role_id="worker")
    await services.lifecycle.kill(agent.id)  # works for a Stopped agent too
    for ref in ["Piper", "piper", agent.id[:4], "Piper [worker]", "piper-agent", agent.id, agent.id.upper()]:
        assert (await services.agents.resolve(ref)).id == agent.id
    with pytest.raises(AgentNotFound):
        await services.agents.resolve("nobody")
    with pytest.raises(AgentNotFound):
        await services.agents.resolve("")
    with pytest.raises(AgentNotFound):
        await services.agents.resolve("550e8400-e29b-41d4-a716-446655440000")


async def test_ambiguous_reference_lists_candidates(services: TownServices) -> None:
    a = await services.agents.spawn("alpha", cli="test-cli", nickname="Sam")
    b = await services.agents.spawn("beta", cli="test-cli", nickname="Sam")
    with pytest.raises(AmbiguousAgent) as err:
        await services.agents.resolve("sam")
    assert sorted(err.value.candidates) == sorted([f"Sam [alpha] ({a.id[:4]})", f"Sam [beta] ({b.id[:4]})"])


async def test_task_lifecycle(services: TownServices, sync_redis, town_name: str) -> None:
    agent = await services.agents.spawn("worker", cli="test-cli")
    assignment = await services.tasks.assign("worker", "Do something")
    task_id = assignment.task.id
    assert assignment.agent.id == agent.id
    inbox = sync_redis.lrange(f"tt:{town_name}:inbox:{agent.id}", 0, -1)
    assert len(inbox) == 1 and f'"task_id":"{task_id}"' in inbox[0] and '"type":"task_assign"' in inbox[0]
    pending = await services.tasks.pending()
    assert [(p.task_id, p.description) for p in pending] == [(task_id, "Do something")]

    started = await services.tasks.start(task_id, agent.id)
    assert started.state is TaskState.RUNNING and started.started_at is not None
    assert sync_redis.hget(f"tt:{town_name}:agent:{agent.id}", "current_task") == task_id

    done = await services.tasks.complete(task_id, "all good")
    assert done.state is TaskState.COMPLETED and done.result == "all good" and done.completed_at
    raw = sync_redis.hgetall(f"tt:{town_name}:agent:{agent.id}")
    assert raw["tasks_completed"] == "1" and "current_task" not in raw
    await services.tasks.complete(task_id, "again")  # already terminal: no second count
    assert sync_redis.hget(f"tt:{town_name}:agent:{agent.id}", "tasks_completed") == "1"
    assert (await services.tasks.get(task_id)).result == "again"
    assert (await services.store.tasks.completed_total()) == 1


async def test_task_fail_and_release(services: TownServices, sync_redis, town_name: str) -> None:
    agent = await services.agents.spawn("worker", cli="test-cli")
    task_id = (await services.tasks.assign(agent.id, "x")).task.id
    await services.tasks.start(task_id, agent.id)
    released = await services.tasks.release(task_id)
    assert released.state is TaskState.ASSIGNED and released.started_at is None
    await services.tasks.start(task_id, agent.id)
    failed = await services.tasks.fail(task_id, "boom")
    assert failed.state is TaskState.FAILED and failed.result == "boom"
    raw = sync_redis.hgetall(f"tt:{town_name}:agent:{agent.id}")
    assert raw["tasks_completed"] == "0" and "current_task" not in raw
    assert (await services.tasks.fail(task_id, "again")).result == "boom"
    with pytest.raises(Conflict):
        await services.tasks.start(task_id, agent.id)


async def test_task_get_errors(services: TownServices) -> None:
    with pytest.raises(InvalidInput) as err:
        await services.tasks.get("not-a-uuid")
    assert err.value.field == "task_id"
    with pytest.raises(TaskNotFound):
        await services.tasks.get("550e8400-e29b-41d4-a716-446655440000")


async def test_send_kinds_and_sender(services: TownServices) -> None:
    sender = await services.agents.spawn("sender", cli="test-cli")
    receiver = await services.agents.spawn("receiver", cli="test-cli")
    sent = await services.messages.send("receiver", "Hello!", kind="task")
    assert not sent.urgent and sent.to_agent == receiver.id
    await services.messages.send("receiver", "fyi", kind="info", sender="sender")
    await services.messages.send("receiver", "rejected: missing tests", kind="ack", sender=sender.id)
    urgent = await services.messages.send("receiver", "now!", kind="query", urgent=True)
    assert urgent.urgent
    inbox = await services.messages.inbox("receiver")
    assert inbox.total == 3 and inbox.urgent == 1
    assert [(m.type, m.from_) for m in inbox.messages] == [
        ("task", SUPERVISOR_ID), ("info", sender.id), ("confirmation", sender.id)
    ]
    assert inbox.messages[2].summary == 'Rejected { reason: "missing tests" }'
    with pytest.raises(InvalidInput) as err:
        await services.messages.send("receiver", "x", kind="shout")
    assert err.value.field == "kind"
    assert (await services.messages.inbox("receiver")).total == 3


async def test_a_backlog_task_wakes_workers_in_its_own_step_and_the_tokens_stay_capped(
        services: TownServices, sync_redis) -> None:
    """The wake token goes with the record and the backlog entry (one script, one round trip); the
    token list never grows past its cap however many tasks come in unwatched."""
    keys = services.store.keys
    task = await services.backlog.add("wake them")
    assert sync_redis.lrange(keys.backlog, 0, -1) == [task.id]
    assert sync_redis.lrange(keys.wake_shared, 0, -1) == ["1"]
    sync_redis.rpush(keys.wake_shared, *["1"] * (WAKE_CAP - 1))
    with counting_round_trips() as trips:  # the script is loaded by now
        await services.backlog.add("one more")
    assert trips.count == 1
    assert sync_redis.llen(keys.wake_shared) == WAKE_CAP
