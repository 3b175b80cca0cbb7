"""``GET /api/scaling``: reference §11.1 scenarios 17–20 over HTTP, the measurement, and the 503 answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from townhall.config import load_town
from townhall.domain import AgentState, TaskState
from townhall.keys import DOCKET_GROUP, TownKeys
from townhall.plugins import load_plugins
from townhall.services.scaling import ScalingRecommendation, ScalingSignal, scaling_signal
from townhall.runtime import build_services
from townhall.store import AgentPatch
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.seed import TownSeed
from townhall.testing.towns import write_town

FIELDS = ["town", "timestamp", "queue_depth", "pending_tasks", "in_flight_tasks", "active_agents",
          "cold_agents", "desired_agents", "max_agents", "scaling_recommendation"]


def get_scaling(proc: TownhallProcess) -> dict[str, Any]:
    response = httpx.get(f"{proc.url}/api/scaling", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == FIELDS
    return body


def numbers(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("town", "timestamp")}


# ---- reference §11.1 ------------------------------------------------------------------------------


async def test_scenario_17_scale_up_signal(seed: TownSeed, serve: Any, town_name: str) -> None:
    worker = await seed.agent("worker")
    await seed.backlog_task()
    await seed.assigned_task(worker)
    body = get_scaling(serve())
    assert body["town"] == town_name
    assert numbers(body) == {
        "queue_depth": 2, "pending_tasks": 2, "in_flight_tasks": 0, "active_agents": 1, "cold_agents": 0,
        "desired_agents": 2, "max_agents": 10, "scaling_recommendation": "scale_up",
    }


async def test_scenario_18_scale_to_zero_for_idle_workers(seed: TownSeed, serve: Any) -> None:
    await seed.agent("worker", AgentState.IDLE, idle_for=timedelta(seconds=10))
    body = get_scaling(serve("[agent]\nlauncher = \"none\"\nidle_timeout_secs = 1\n"))
    assert numbers(body) == {
        "queue_depth": 0, "pending_tasks": 0, "in_flight_tasks": 0, "active_agents": 1, "cold_agents": 0,
        "desired_agents": 0, "max_agents": 10, "scaling_recommendation": "scale_to_zero",
    }


async def test_scenario_19_streams_depth_counts_unread_and_unacked(
    aredis: aioredis.Redis, town_name: str, serve: Any
) -> None:
    docket = TownKeys(town_name).docket
    await aredis.xgroup_create(docket, DOCKET_GROUP, id="$", mkstream=True)
    for n in (1, 2):
        await aredis.xadd(docket, {"task_id": f"00000000-0000-4000-8000-00000000000{n}", "type": "task_assign"})
    await aredis.xreadgroup(DOCKET_GROUP, "worker-1", {docket: ">"}, count=1)
    body = get_scaling(serve("use_streams = true"))
    assert (body["pending_tasks"], body["in_flight_tasks"], body["queue_depth"]) == (1, 1, 2)
    assert (body["desired_agents"], body["scaling_recommendation"]) == (2, "scale_up")


async def test_scenario_20_streams_excludes_acknowledged_entries(
    aredis: aioredis.Redis, town_name: str, serve: Any
) -> None:
    docket = TownKeys(town_name).docket
    await aredis.xgroup_create(docket, DOCKET_GROUP, id="$", mkstream=True)
    await aredis.xadd(docket, {"task_id": "00000000-0000-4000-8000-000000000001", "type": "task_assign"})
    [[_, [(entry_id, _)]]] = await aredis.xreadgroup(DOCKET_GROUP, "worker-1", {docket: ">"}, count=1)
    await aredis.xack(docket, DOCKET_GROUP, entry_id)
    body = get_scaling(serve("use_streams = true"))
    assert (body["pending_tasks"], body["in_flight_tasks"], body["queue_depth"], body["desired_agents"]) == (0, 0, 0, 0)


def test_timestamp_is_rfc3339_with_utc_offset(serve: Any) -> None:
    body = get_scaling(serve())
    assert body["timestamp"].endswith("+00:00")
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() == timedelta(0)


# ---- measurement (service against a real Redis) ----------------------------------------------------


@pytest.fixture
async def measure(town_dir: Path, aredis: aioredis.Redis) -> AsyncIterator[Any]:
    async def run(extra: str = "") -> ScalingSignal:
        if extra:
            write_town(town_dir, load_town(town_dir).name, redis_url=load_town(town_dir).config.redis.url,
                       extra=extra)
        town = load_town(town_dir)
        services = build_services(town, aredis, load_plugins().registry)
        return await scaling_signal(services.store, services.queue, town=town.name,
                                    max_agents=town.config.max_agents,
                                    idle_timeout_secs=town.config.agent.idle_timeout_secs)

    yield run


async def test_in_flight_is_the_union_of_running_tasks_and_current_tasks(seed: TownSeed, measure: Any) -> None:
    running = await seed.task(TaskState.RUNNING)
    other = await seed.task(TaskState.ASSIGNED)
    await seed.agent("a", AgentState.WORKING, current_task=running.id)  # counted once with the index
    await seed.agent("b", AgentState.WORKING, current_task=other.id)  # taken, not yet marked running
    signal = await measure()
    assert (signal.pending_tasks, signal.in_flight_tasks, signal.desired_agents) == (0, 2, 2)
    assert signal.scaling_recommendation is ScalingRecommendation.STEADY


async def test_stale_current_task_pointers_are_not_in_flight(seed: TownSeed, measure: Any) -> None:
    """GAP 32: a finished or deleted current_task is no work."""
    done = await seed.task(TaskState.COMPLETED)
    await seed.agent("a", AgentState.IDLE, current_task=done.id)
    await seed.agent("b", AgentState.IDLE, current_task="00000000-0000-4000-8000-0000000000ff")
    signal = await measure()
    assert (signal.in_flight_tasks, signal.queue_depth, signal.active_agents) == (0, 0, 2)
    assert signal.scaling_recommendation is ScalingRecommendation.SCALE_DOWN


async def test_task_still_in_an_inbox_is_counted_once_as_pending(seed: TownSeed, measure: Any) -> None:
    """GAP 32: the agent points at a task whose task_assign is still queued in its inbox."""
    worker = await seed.agent("a", AgentState.WORKING)
    task = await seed.assigned_task(worker)
    await seed.store.agents.update(worker.id, AgentPatch(current_task=task.id))
    signal = await measure()
    assert (signal.pending_tasks, signal.in_flight_tasks, signal.queue_depth) == (1, 0, 1)


async def test_current_tasks_of_inactive_agents_are_ignored(seed: TownSeed, measure: Any) -> None:
    task = await seed.task(TaskState.ASSIGNED)
    await seed.agent("gone", AgentState.STOPPED, current_task=task.id)
    await seed.agent("cold", AgentState.COLD, current_task=task.id)
    signal = await measure()
    assert (signal.in_flight_tasks, signal.active_agents, signal.cold_agents) == (0, 0, 1)


async def test_finished_tasks_are_no_work(seed: TownSeed, measure: Any) -> None:
    for state in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED):
        await seed.task(state)
    signal = await measure()
    assert (signal.queue_depth, signal.scaling_recommendation) == (0, ScalingRecommendation.SCALE_TO_ZERO)


async def test_finished_task_assignments_in_an_inbox_are_not_pending(seed: TownSeed, measure: Any) -> None:
    worker = await seed.agent("a", AgentState.IDLE)
    task = await seed.assigned_task(worker)
    await seed.store.tasks.transition(task.id, TaskState.COMPLETED)
    assert (await measure()).pending_tasks == 0


async def test_streams_mode_counts_work_assigned_to_inboxes(
    seed: TownSeed, aredis: aioredis.Redis, town_name: str, measure: Any
) -> None:
    """Contract §7: direct assignments bypass the docket, yet they are queued work."""
    docket = TownKeys(town_name).docket
    await aredis.xgroup_create(docket, DOCKET_GROUP, id="$", mkstream=True)
    await aredis.xadd(docket, {"task_id": "00000000-0000-4000-8000-000000000001", "type": "task_assign"})
    worker = await seed.agent("w", AgentState.IDLE)
    await seed.assigned_task(worker)
    signal = await measure("use_streams = true")
    assert (signal.pending_tasks, signal.in_flight_tasks, signal.desired_agents) == (2, 0, 2)
    assert signal.scaling_recommendation is ScalingRecommendation.SCALE_UP


async def test_streams_mode_without_a_docket_is_empty(measure: Any) -> None:
    signal = await measure("use_streams = true")
    assert (signal.queue_depth, signal.scaling_recommendation) == (0, ScalingRecommendation.SCALE_TO_ZERO)


async def test_streams_mode_counts_direct_work_in_flight(seed: TownSeed, measure: Any) -> None:
    running = await seed.task(TaskState.RUNNING)
    await seed.agent("w", AgentState.WORKING, current_task=running.id)
    signal = await measure("use_streams = true")
    assert (signal.pending_tasks, signal.in_flight_tasks, signal.scaling_recommendation) == (
        0, 1, ScalingRecommendation.STEADY)


# ---- Redis unreachable ------------------------------------------------------------------------------


def test_unreachable_redis_is_a_503_problem(own_redis_townhall: tuple[RedisServer, TownhallProcess]) -> None:
    server, proc = own_redis_townhall
    assert httpx.get(f"{proc.url}/api/scaling", timeout=10).status_code == 200
    server.kill()
    response = httpx.get(f"{proc.url}/api/scaling", timeout=10)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["title"], problem["instance"]) == (503, "Service Unavailable",
                                                                           "/api/scaling")
    assert problem["detail"].startswith("Failed to ")
    assert response.headers["retry-after"] == "1"
    server.start()
    assert httpx.get(f"{proc.url}/api/scaling", timeout=10).status_code == 200
