"""Cancel and retry (issue 13 item 2): a queued task is withdrawn from wherever it waits, a running one's CLI
is stopped by its worker (a real worker process and a slow fake CLI), a failed or cancelled one goes back
on the shared queue; other states are a 409; each action is audited with its principal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from tests.support.workers import agent_hash, executions, fake_town, seed_agent, start_worker, wait_for
from townhall.builtin.queue_lists import ListsQueue
from townhall.builtin.queue_streams import StreamsQueue
from townhall.config import load_town
from townhall.domain import Message, Task, TaskState
from townhall.domain.messages import InformationalBody
from townhall.domain_errors import Conflict, InvalidInput, TaskNotFound
from townhall.keys import TownKeys
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices
from townhall.store import TownStore
from townhall.testing.process import TownhallProcess, run_cli


@pytest.fixture
async def services(tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis) -> TownServices:
    fake_town(tmp_path, town_name, redis_url)
    return build_services(load_town(tmp_path), aredis, load_plugins().registry)


async def test_cancel_withdraws_queued_work(services: TownServices, sync_redis: redis.Redis,
                                            town_name: str) -> None:
    k = TownKeys(town_name)
    shared = await services.backlog.add("queued", [])
    agent = await services.agents.spawn("w1", launch=False)
    direct = (await services.tasks.assign("w1", "direct")).task
    await services.messages.deliver(Message.new(agent.id, agent.id, InformationalBody(summary_text=f"about {direct.id}")))
    urgent_copy = sync_redis.lindex(k.inbox(agent.id), 0)
    sync_redis.lpush(k.urgent(agent.id), urgent_copy)  # a second delivery of the same assignment

    cancelled = await services.actions.cancel(shared.id)
    assert cancelled.state is TaskState.CANCELLED and cancelled.result == "Cancelled"
    assert cancelled.completed_at is not None
    assert sync_redis.lrange(k.backlog, 0, -1) == []
    await services.actions.cancel(direct.id)
    inbox = [json.loads(m) for m in sync_redis.lrange(k.inbox(agent.id), 0, -1)]
    assert [m["type"] for m in inbox] == ["informational"]  # only the task's own entries left
    assert sync_redis.llen(k.urgent(agent.id)) == 0
    assert set(sync_redis.zrange(k.history_state("cancelled"), 0, -1)) == {shared.id, direct.id}
    assert sync_redis.hget(k.task_counts, "cancelled") == "2"

    with pytest.raises(Conflict, match="is cancelled and cannot be cancelled"):
        await services.actions.cancel(direct.id)
    with pytest.raises(TaskNotFound):
        await services.actions.cancel("6f2d0d8a-95a5-4c43-a8c4-1e7d8d2a6f10")
    with pytest.raises(InvalidInput):
        await services.actions.cancel("not-a-uuid")


async def test_retry_requeues_failed_and_cancelled_work(services: TownServices, sync_redis: redis.Redis,
                                                        town_name: str) -> None:
    k = TownKeys(town_name)
    agent = await services.agents.spawn("w1", launch=False)
    task = (await services.tasks.assign("w1", "flaky")).task
    await services.tasks.start(task.id, agent.id)
    sync_redis.hset(k.task(task.id), mapping={"attempts": "3", "last_error": "boom", "attempt_errors": '["a"]'})
    await services.tasks.fail(task.id, "boom")
    with pytest.raises(Conflict, match="is pending; only a failed or cancelled task"):
        await services.actions.retry((await services.backlog.add("pending", [])).id)

    again = await services.actions.retry(task.id)
    assert again.state is TaskState.PENDING and again.assigned_to is None and again.result is None
    raw = sync_redis.hgetall(k.task(task.id))
    assert not {"attempts", "last_error", "attempt_errors", "completed_at", "started_at"} & set(raw)
    assert sync_redis.lrange(k.backlog, 0, -1)[-1] == task.id  # last in line
    assert sync_redis.llen(k.wake_shared) >= 1  # workers were told
    assert sync_redis.zrange(k.history_state("pending"), 0, -1).count(task.id) == 1
    await services.actions.cancel(task.id)
    assert (await services.actions.retry(task.id)).state is TaskState.PENDING
    assert sync_redis.lrange(k.backlog, 0, -1).count(task.id) == 1


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_a_worker_skips_cancelled_shared_work_and_runs_a_retried_one(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=2)
    services = build_services(load_town(tmp_path), aredis, load_plugins().registry)
    store = TownStore(aredis, town_name)
    task = Task.new("shared work")
    await (StreamsQueue(store) if streams else ListsQueue(store)).add_task(task)
    await services.actions.cancel(task.id)
    worker = seed_agent(sync_redis, town_name, "w1")
    assert start_worker(tmp_path, "w1", worker).wait(timeout=30) == 0
    assert executions(tmp_path) == []  # the stale docket entry was acknowledged and skipped
    if streams:
        assert (await store.docket.depth()).pending == 0

    await services.actions.retry(task.id)
    assert start_worker(tmp_path, "w1", worker).wait(timeout=30) == 0
    assert executions(tmp_path) == [(task.id, worker)]
    assert sync_redis.hget(TownKeys(town_name).task(task.id), "state") == "completed"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
def test_cancel_stops_the_running_cli(tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis,
                                      streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams)
    keys = TownKeys(town_name)
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as api:
            worker = seed_agent(sync_redis, town_name, "w1")
            running = start_worker(tmp_path, "w1", worker)
            slow = api.post("/v1/backlog", json={"description": "SLEEP=120"}).json()["task_id"]
            group = str(wait_for(lambda: sync_redis.get(keys.cli_group(worker))))
            pgid = int(group.rsplit(":", 1)[1])
            assert sync_redis.hget(keys.task(slow), "state") == "running" and _group_alive(pgid)

            r = api.post(f"/v1/tasks/{slow}/cancel")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "cancelled" and r.json()["result"] == "Cancelled by local"
            wait_for(lambda: not _group_alive(pgid))
            wait_for(lambda: agent_hash(sync_redis, town_name, worker)["state"] == "idle")
            assert not sync_redis.exists(keys.cli_group(worker))
            assert sync_redis.hget(keys.task(slow), "state") == "cancelled"
            assert "current_task" not in agent_hash(sync_redis, town_name, worker)
            assert any("cancelled" in line for line in sync_redis.lrange(keys.activity(worker), 0, -1))
            assert sync_redis.llen(keys.processing(worker)) == 0
            if streams:
                assert sync_redis.xpending(keys.docket, "workers")["pending"] == 0

            # The worker goes on with the next task; a retried task runs again.
            quick = api.post("/v1/backlog", json={"description": "quick"}).json()["task_id"]
            wait_for(lambda: sync_redis.hget(keys.task(quick), "state") == "completed")
            r = api.post(f"/v1/tasks/{slow}/retry")
            # The live worker may take it before the answer is read back.
            assert r.status_code == 200 and r.json()["state"] in ("pending", "assigned", "running"), r.text
            # Attempts start again from 0 (a run that began meanwhile counts 1).
            assert r.json()["attempts"] == (1 if r.json()["state"] == "running" else 0), r.text
            assert r.json()["result"] is None
            wait_for(lambda: sync_redis.hget(keys.task(slow), "state") == "running")
            assert api.post(f"/v1/tasks/{quick}/cancel").status_code == 409
            assert api.post(f"/v1/tasks/{quick}/retry").status_code == 409
            assert api.post(f"/v1/tasks/{slow}/cancel").status_code == 200  # open again: cancellable
            wait_for(lambda: agent_hash(sync_redis, town_name, worker)["state"] == "idle")
            assert api.post("/v1/tasks/6f2d0d8a-95a5-4c43-a8c4-1e7d8d2a6f10/cancel").status_code == 404
            assert api.post("/v1/tasks/nope/retry").status_code == 422
            running.terminate()
            assert running.wait(timeout=30) == 0
        audit = [json.loads(line.split("townhall.audit: ", 1)[1]) for line in proc.output().splitlines()
                 if "townhall.audit: " in line and "/cancel" in line]
        assert {"principal": "local", "method": "POST", "path": f"/v1/tasks/{slow}/cancel", "status": 200,
                "outcome": "success"}.items() <= audit[0].items()
    finally:
        proc.stop()

    cli = run_cli("--town", str(tmp_path), "task", "retry", slow, "--json", program="tt")
    assert cli.returncode == 0 and json.loads(cli.stdout)["state"] == "pending", cli.stderr
    cli = run_cli("--town", str(tmp_path), "task", "cancel", slow, program="tt")
    assert cli.returncode == 0 and "cancelled" in cli.stdout
    cli = run_cli("--town", str(tmp_path), "task", "cancel", slow, program="tt")
    assert cli.returncode == 1 and "cannot be cancelled" in cli.stderr
